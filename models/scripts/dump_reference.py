#!/usr/bin/env python3
"""Writes a reference dump for ANY Qwen2-VL / Qwen2.5-VL checkpoint directory, in the format
`ember model check` reads, so a downloaded checkpoint can be checked against transformers on the
machine that has both (run by hand, not in CI):

    /root/.cache/torch-venv/bin/python models/scripts/dump_reference.py \
        --model /models/Qwen2-VL-2B-Instruct --image frame.png --prompt "What do you see?" \
        --out /models/Qwen2-VL-2B-Instruct/reference.safetensors --tokens 16
    ember model check --model /models/Qwen2-VL-2B-Instruct --reference .../reference.safetensors

The forward runs in float32 with eager attention (bf16 checkpoints are upcast), as ember's
parity check computes in f32. Images are resized by transformers' processor; ember receives the
processed `pixel_values` from the dump, so resampling differences do not enter the check.
"""

from __future__ import annotations

import argparse
import json

import torch
from PIL import Image
from safetensors.torch import save_file

import transformers
from transformers import AutoConfig, AutoProcessor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", action="append", default=[], help="repeat for several images")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--system", default=None)
    ap.add_argument("--tokens", type=int, default=16, help="greedy tokens to generate")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    cfg = AutoConfig.from_pretrained(args.model)
    if cfg.model_type == "qwen2_vl":
        from transformers import Qwen2VLForConditionalGeneration as Cls
    elif cfg.model_type == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration as Cls
    else:
        raise SystemExit(f"unsupported model_type {cfg.model_type}")
    model = Cls.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").eval()
    processor = AutoProcessor.from_pretrained(args.model)

    messages = []
    if args.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": args.system}]})
    messages.append({"role": "user", "content": [{"type": "image"} for _ in args.image]
                     + [{"type": "text", "text": args.prompt}]})
    templater = processor if getattr(processor, "chat_template", None) else processor.tokenizer
    prompt = templater.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    images = [Image.open(p).convert("RGB") for p in args.image]
    inputs = processor(text=[prompt], images=images or None, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits.float()
        gen = model.generate(**inputs, max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                             do_sample=False, eos_token_id=None)
    tensors = {
        "input_ids": inputs["input_ids"].to(torch.int64).contiguous(),
        "logits": logits.contiguous(),
        "generated": gen.to(torch.int64).contiguous(),
    }
    if images:
        tensors["pixel_values"] = inputs["pixel_values"].float().contiguous()
        tensors["image_grid_thw"] = inputs["image_grid_thw"].to(torch.int64).contiguous()
        with torch.no_grad():
            feats = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
            tensors["image_embeds"] = torch.cat(list(feats.pooler_output), dim=0).float().contiguous()
            pos, _ = model.model.get_rope_index(inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"],
                                                image_grid_thw=inputs["image_grid_thw"])
            tensors["position_ids"] = pos.to(torch.int64).contiguous()
    save_file(tensors, args.out, metadata={
        "messages": json.dumps(messages), "images": json.dumps(args.image), "prompt": prompt,
        "transformers_version": transformers.__version__, "torch_version": torch.__version__,
        "attention": "eager", "compute_dtype": "float32",
        "weights_dtype": str(getattr(cfg, "torch_dtype", getattr(cfg, "dtype", ""))),
    })
    print(f"wrote {args.out}: {inputs['input_ids'].shape[1]} prompt tokens, {len(images)} image(s), "
          f"{args.tokens} greedy tokens")


if __name__ == "__main__":
    main()
