#!/usr/bin/env python3
"""Random-weight generation models of realistic size for the generation benchmark (speed does not
depend on the weights). Run with the reference toolkit's venv:

    $REF_ROOT/venv/bin/python infra/bench/make_generation_models.py OUT_DIR

Makes OUT_DIR/qwen2-0.5b (Qwen2-0.5B's config: hidden 896, 24 layers, 14 heads / 2 kv heads,
intermediate 4864, vocab 151936, tied embeddings: 494M parameters; saved in bfloat16 as the Hub's
Qwen2-0.5B is, which the toolkit loads as float32 and we keep as exact bf16) and OUT_DIR/t5-small (t5-small's
config: d_model 512, 6+6 layers, 8 heads, d_ff 2048, vocab 32128: 60M parameters), each with a
word-level tokenizer over the whole vocabulary ("w0", "w1", ...) so every generated id decodes.
"""
import json
import os
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, T5Config,
                          T5ForConditionalGeneration)


def tokenizer(vocab_size, specials):
    vocab = {t: i for i, t in enumerate(specials)}
    for i in range(len(specials), vocab_size):
        vocab[f"w{i}"] = i
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[0]))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return tk


def save(model, tok, d, **special):
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=32768, **special).save_pretrained(d)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    d = os.path.join(out, "qwen2-0.5b-bf16")
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                          num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                          rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=0,
                          eos_token_id=1, pad_token_id=2)
        model = Qwen2ForCausalLM(cfg).eval().to(torch.bfloat16)
        model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2)
        save(model, tokenizer(151936, ["<unk>", "<eos>", "<pad>"]), d, unk_token="<unk>", eos_token="<eos>",
             pad_token="<pad>")
        print("made", d)
    d = os.path.join(out, "t5-small")
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        cfg = T5Config(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
                       decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        model = T5ForConditionalGeneration(cfg).eval()
        model.generation_config = GenerationConfig(decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        save(model, tokenizer(32128, ["<pad>", "</s>", "<unk>"]), d, pad_token="<pad>", eos_token="</s>",
             unk_token="<unk>")
        print("made", d)


if __name__ == "__main__":
    main()
