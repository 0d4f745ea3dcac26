#!/usr/bin/env python3
"""Random-weight ViT image classifiers of real shapes for the vision benchmark (made once):
vit-tiny (hidden 192, 12 layers, 3 heads: the size where a server's overhead dominates) and
vit-base (hidden 768, 12 layers, 12 heads: where the arithmetic dominates), 224x224, patch 16,
1000 labels, with a ViTImageProcessor (bilinear resize to 224, mean/std 0.5).

    $REF_ROOT/venv/bin/python infra/bench/make_vision_models.py OUT_DIR
"""
import os
import sys

import torch
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

SHAPES = {
    "vit-tiny": dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768),
    "vit-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def main():
    out = sys.argv[1]
    for name, shape in SHAPES.items():
        d = os.path.join(out, name)
        if os.path.exists(os.path.join(d, "model.safetensors")):
            continue
        torch.manual_seed(20240601)
        cfg = ViTConfig(image_size=224, patch_size=16, num_labels=1000, **shape)
        cfg.id2label = {i: f"class_{i}" for i in range(1000)}
        cfg.label2id = {v: k for k, v in cfg.id2label.items()}
        ViTForImageClassification(cfg).eval().save_pretrained(d, safe_serialization=True)
        ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(d)
        print(f"made {d}", file=sys.stderr)


if __name__ == "__main__":
    main()
