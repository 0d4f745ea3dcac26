#!/usr/bin/env python3
"""Random-weight ViT image classifiers of real shapes for the vision benchmark (made once):
vit-tiny (hidden 192, 12 layers, 3 heads: the size where a server's overhead dominates) and
vit-base (hidden 768, 12 layers, 12 heads: where the arithmetic dominates), 224x224, patch 16,
1000 labels, with a ViTImageProcessor (bilinear resize to 224, mean/std 0.5); and vit-base-bf16,
the same weights stored in bfloat16 (as many fine-tuned checkpoints are: transformers, and so the
toolkit, loads them as float32 by default; the Rust server keeps them in bfloat16 and widens them
exactly, so both compute the same float32 products).

    $REF_ROOT/venv/bin/python infra/bench/make_vision_models.py OUT_DIR
"""
import os
import sys

import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

SHAPES = {
    # name: shape (vit-base-bf16 is vit-base stored in bfloat16)
    "vit-tiny": dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768),
    "vit-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
BF16 = {"vit-base-bf16": "vit-base"}


def main():
    out = sys.argv[1]
    for name in list(SHAPES) + list(BF16):
        shape = SHAPES[BF16.get(name, name)]
        d = os.path.join(out, name)
        if os.path.exists(os.path.join(d, "model.safetensors")):
            continue
        torch.manual_seed(20240601)
        cfg = ViTConfig(image_size=224, patch_size=16, num_labels=1000, **shape)
        cfg.id2label = {i: f"class_{i}" for i in range(1000)}
        cfg.label2id = {v: k for k, v in cfg.id2label.items()}
        model = ViTForImageClassification(cfg).eval()
        if name in BF16:
            model = model.to(torch.bfloat16)
        model.save_pretrained(d, safe_serialization=True)
        ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(d)
        print(f"made {d}", file=sys.stderr)


if __name__ == "__main__":
    main()
