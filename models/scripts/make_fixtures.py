#!/usr/bin/env python3
"""Writes ember's Qwen2-VL / Qwen2.5-VL parity fixtures (run by hand, not in CI).

Needs transformers 5.x, torch, safetensors, pillow and tokenizers, e.g.

    python3 -m venv /root/.cache/torch-venv
    /root/.cache/torch-venv/bin/pip install torch transformers safetensors pillow
    /root/.cache/torch-venv/bin/python models/scripts/make_fixtures.py

It writes, under `models/fixtures/` (see the README there):

- `tokenizer/`: a tiny byte-level BPE tokenizer (trained here on a small corpus) with the Qwen
  special tokens appended after the learned vocabulary. The tiny checkpoints use these small ids
  for `<|image_pad|>`, `<|vision_start|>`, ... and say so in their `config.json`, exactly as the
  real checkpoints state their own (151655, 151652, ...).
- `images/*.png`: deterministic test images whose sides are multiples of 28, so that no resize
  happens (resampling filters differ between libraries; `smart_resize` has its own tests).
- three tiny random checkpoints in Hub format, each with a reference dump `reference.safetensors`
  in the format `ember model check` reads:
  * `qwen2-vl-tiny`: Qwen2-VL, flat legacy `config.json` (text fields at the top level,
    `rope_scaling {type: mrope}`), tied output head, f32, one `model.safetensors`, old
    preprocessor shape (`min_pixels`/`max_pixels`), `chat_template.json`;
  * `qwen2_5-vl-tiny`: Qwen2.5-VL, nested transformers-5 `config.json` (`text_config` with
    `rope_parameters`), untied head, windowed vision attention with a full-attention block, f32,
    sharded safetensors with an index, transformers-5 `processor_config.json` (nested
    `image_processor` with `size`), `chat_template.jinja`;
  * `qwen2_5-vl-tiny-bf16`: Qwen2.5-VL, flat legacy config, tied head, bf16 weights, flat
    `preprocessor_config.json` with `size`, template in `tokenizer_config.json`. Its reference is
    computed in f32 from the same bf16 weights.
- `smart_resize.json`: transformers' `smart_resize` on a grid of sizes (integer test vectors).
- `resize_reference.safetensors`: one image that does need a resize, with transformers'
  `pixel_values` (to measure how close our bicubic filter is; not a parity requirement).

Every prompt holds two images, one of them non-square. References use eager attention, f32.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

import transformers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
SEED = 20250607
GEN_TOKENS = 8

# The chat template Qwen2-VL-2B/7B-Instruct ship (tokenizer_config.json / chat_template.json).
# It is interface data, like the prompt strings: checkpoints carry it and we render it verbatim.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
BPE_VOCAB = 400  # learned tokens (256 bytes + merges); specials follow at 400..406
MODEL_VOCAB = 512  # the embedding is larger than the tokenizer, as in the real models


def corpus() -> list[str]:
    """A small English corpus: the Embodied-Reasoner interface strings plus a few sentences."""
    lines = [
        "You are a robot in given room. You need to complete the tasks according to human instructions.",
        "This is an image from your frontal perspective. Please select an action from the Available_Actions.",
        "navigate to CounterTop", "pickup Apple", "put Fridge", "open Fridge", "close Fridge",
        "toggle LightSwitch", "observe", "move forward", "end",
        "<DecisionMaking>navigate to Fridge</DecisionMaking>",
        "<think> The gripper is above the cube. </think> <answer> [[B]] </answer>",
        "Task: find the apple and put it in the fridge.",
        "After executing your previous action, you get this new image above.",
        "To complete your task, you can think step by step at first and then output your new action.",
        "Position: [0.275, -0.009, 0.850]",
    ]
    return lines * 4


def build_tokenizer(out: Path) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    assert tok.get_vocab_size() <= BPE_VOCAB, tok.get_vocab_size()
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


def special_ids(tok: PreTrainedTokenizerFast) -> dict[str, int]:
    return {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}


def make_image(h: int, w: int, seed: int) -> Image.Image:
    """A smooth colour field with a little noise: every pixel distinct enough to catch
    ordering mistakes in the patch layout."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 100 * np.sin(x / 7.0 + seed) * np.cos(y / 11.0)
    g = 127 + 100 * np.cos((x + y) / 9.0 - seed)
    b = 127 + 100 * np.sin(y / 5.0) * np.sin(x / 13.0 + 1.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, size=(h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Random weights with a useful spread: std 1/sqrt(fan_in) for matrices, norms around 1,
    biases small.
    (The library's own init, std 0.02, gives logits so close to each other that greedy decoding
    would hinge on rounding noise.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or "layernorm" in name \
                    or name.endswith("norm.weight") or "ln_q.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if p.ndim == 2 else int(np.prod(p.shape[1:]))
                std = 1.0 / math.sqrt(fan_in) if p.ndim > 1 else 0.2
                if "embed_tokens" in name:
                    # A tied head multiplies by the embedding: keep logits O(1), as in trained models
                    # relative to f32 rounding (a 1e-4 tolerance on logits of magnitude 60 would
                    # test the order of f32 sums, not the port).
                    std = 0.125
                p.copy_(std * torch.randn(p.shape, generator=g))


def text_fields(vocab: int) -> dict:
    return dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=None,
    )


def legacy_config(nested: dict, family: str) -> dict:
    """Rewrites a transformers-5 config.json into the shape of the 2024/2025 Hub checkpoints:
    text fields at the top level, `rope_theta` and `rope_scaling {type: mrope}` beside them."""
    text = dict(nested["text_config"])
    rope = text.pop("rope_parameters")
    for k in ("model_type", "layer_types", "dtype"):
        text.pop(k, None)
    out = {
        "architectures": nested["architectures"],
        "model_type": nested["model_type"],
        **text,
        "rope_theta": rope["rope_theta"],
        "rope_scaling": {"type": "mrope", "mrope_section": rope["mrope_section"]},
        "tie_word_embeddings": nested["tie_word_embeddings"],
        "torch_dtype": nested.get("dtype", "float32"),
        "image_token_id": nested["image_token_id"],
        "video_token_id": nested["video_token_id"],
        "vision_start_token_id": nested["vision_start_token_id"],
        "vision_end_token_id": nested["vision_end_token_id"],
        "transformers_version": "4.45.0.dev0",
    }
    vision = dict(nested["vision_config"])
    vision.pop("rope_parameters", None)
    vision.pop("model_type", None)
    vision["in_chans"] = vision.pop("in_channels")
    if family == "qwen2_vl":
        vision.pop("hidden_act", None)  # the real Qwen2-VL configs leave the default (quick_gelu)
    out["vision_config"] = vision
    return out


def old_preprocessor(new: dict) -> dict:
    """The pre-transformers-5 preprocessor_config.json shape (`min_pixels`/`max_pixels`)."""
    return {
        "min_pixels": new["size"]["shortest_edge"],
        "max_pixels": new["size"]["longest_edge"],
        "patch_size": new["patch_size"],
        "temporal_patch_size": new["temporal_patch_size"],
        "merge_size": new["merge_size"],
        "image_mean": new["image_mean"],
        "image_std": new["image_std"],
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }


def messages_two_images(text_a: str, text_b: str) -> list[dict]:
    return [
        {"role": "system", "content": [{"type": "text", "text": "You are a robot in given room."}]},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": text_a},
                {"type": "image"},
                {"type": "text", "text": text_b},
            ],
        },
    ]


def build_checkpoint(spec: dict, tokenizer_dir: Path, tok: PreTrainedTokenizerFast, images: dict) -> None:
    name = spec["name"]
    out = ROOT / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ids = special_ids(tok)
    common = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=spec["tied"],
    )
    text = text_fields(MODEL_VOCAB)
    if spec["family"] == "qwen2_vl":
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 2, 2]}
        cfg = Qwen2VLConfig(
            text_config=text,
            vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2),
            **common,
        )
        cls = Qwen2VLForConditionalGeneration
    else:
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 2, 2]}
        cfg = Qwen2_5_VLConfig(
            text_config=text,
            vision_config=dict(
                depth=3,
                hidden_size=32,
                intermediate_size=48,
                out_hidden_size=64,
                num_heads=4,
                window_size=56,  # 2x2 merged tokens (4x4 patches) per window
                fullatt_block_indexes=[1],
            ),
            **common,
        )
        cls = Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(SEED)
    model = cls(cfg)
    randomise(model, SEED + len(name))
    model.eval()

    dtype = spec["dtype"]
    if dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    save_kwargs = {"max_shard_size": spec["shard"]} if spec.get("shard") else {}
    model.save_pretrained(out, **save_kwargs)
    model.generation_config.save_pretrained(out)

    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 256)
    processor = Qwen2VLProcessor(
        image_processor=image_processor, tokenizer=tok, video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)

    # Re-shape the files the way the real checkpoints do, where the spec asks for it.
    cfg_path = out / "config.json"
    if spec["config"] == "legacy":
        nested = json.loads(cfg_path.read_text())
        cfg_path.write_text(json.dumps(legacy_config(nested, spec["family"]), indent=2) + "\n")
    # Preprocessor: transformers 5 writes `processor_config.json` with a nested `image_processor`
    # (`size {shortest_edge, longest_edge}`); older checkpoints have a flat
    # `preprocessor_config.json`, with `min_pixels`/`max_pixels` ("old") or with `size` ("flat").
    proc_path = out / "processor_config.json"
    pre_path = out / "preprocessor_config.json"
    nested_pre = json.loads(proc_path.read_text())["image_processor"]
    if spec["preprocessor"] == "old":
        pre_path.write_text(json.dumps(old_preprocessor(nested_pre), indent=2) + "\n")
        proc_path.unlink()
    elif spec["preprocessor"] == "flat":
        pre_path.write_text(json.dumps({**nested_pre, "processor_class": "Qwen2VLProcessor"}, indent=2) + "\n")
        proc_path.unlink()
    # Where the chat template lives.
    jinja = out / "chat_template.jinja"
    for f in ("chat_template.json", "chat_template.jinja"):
        (out / f).unlink(missing_ok=True)
    tcfg_path = out / "tokenizer_config.json"
    tcfg = json.loads(tcfg_path.read_text())
    tcfg.pop("chat_template", None)
    if spec["template"] == "chat_template.json":
        (out / "chat_template.json").write_text(json.dumps({"chat_template": QWEN2_VL_CHAT_TEMPLATE}, indent=2) + "\n")
    elif spec["template"] == "chat_template.jinja":
        jinja.write_text(QWEN2_VL_CHAT_TEMPLATE)
    else:
        tcfg["chat_template"] = QWEN2_VL_CHAT_TEMPLATE
    tcfg_path.write_text(json.dumps(tcfg, indent=2) + "\n")
    proc_cfg = out / "processor_config.json"
    if proc_cfg.exists():
        pc = json.loads(proc_cfg.read_text())
        pc.pop("chat_template", None)
        proc_cfg.write_text(json.dumps(pc, indent=2) + "\n")

    # Reload everything from disk: what transformers reads is what we must reproduce.
    model = cls.from_pretrained(out, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    processor = Qwen2VLProcessor.from_pretrained(out)
    imgs = [images[k] for k in spec["images"]]
    messages = messages_two_images(*spec["texts"])
    # A template in tokenizer_config.json belongs to the tokenizer, not to the processor.
    templater = processor if processor.chat_template else processor.tokenizer
    prompt = templater.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[prompt], images=imgs, return_tensors="pt")
    assert "mm_token_type_ids" in inputs, list(inputs.keys())
    with torch.no_grad():
        logits = model(**inputs).logits.float()
        gen = model.generate(
            **inputs, max_new_tokens=GEN_TOKENS, min_new_tokens=GEN_TOKENS, do_sample=False,
            eos_token_id=None, pad_token_id=ids["<|endoftext|>"],
        )
        feats = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"])
        image_embeds = torch.cat(list(feats.pooler_output), dim=0).float()
        position_ids, _ = model.model.get_rope_index(
            inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"], image_grid_thw=inputs["image_grid_thw"]
        )
    assert gen.shape[1] == inputs["input_ids"].shape[1] + GEN_TOKENS
    tensors = {
        "input_ids": inputs["input_ids"].to(torch.int64).contiguous(),
        "pixel_values": inputs["pixel_values"].float().contiguous(),
        "image_grid_thw": inputs["image_grid_thw"].to(torch.int64).contiguous(),
        "logits": logits.contiguous(),
        "generated": gen.to(torch.int64).contiguous(),
        "image_embeds": image_embeds.contiguous(),
        "position_ids": position_ids.to(torch.int64).contiguous(),
    }
    meta = {
        "messages": json.dumps(messages),
        "images": json.dumps(spec["images"]),
        "prompt": prompt,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "attention": "eager",
        "compute_dtype": "float32",
        "weights_dtype": dtype,
    }
    save_file(tensors, str(out / "reference.safetensors"), metadata=meta)
    print(f"{name}: T={inputs['input_ids'].shape[1]} patches={inputs['pixel_values'].shape[0]} "
          f"grids={inputs['image_grid_thw'].tolist()} generated={gen[0, -GEN_TOKENS:].tolist()}")


def smart_resize_vectors() -> None:
    cases = []
    sizes = [1, 27, 28, 29, 41, 42, 43, 56, 69, 70, 71, 98, 100, 224, 225, 300, 333, 450, 480, 500,
             640, 720, 800, 1000, 1080, 1280, 1920, 2000, 4000]
    bounds = [(56 * 56, 28 * 28 * 1280), (3136, 351232), (56 * 56, 28 * 28 * 256), (256 * 28 * 28, 1280 * 28 * 28)]
    for h in sizes:
        for w in sizes:
            for lo, hi in bounds:
                try:
                    rh, rw = smart_resize(h, w, factor=28, min_pixels=lo, max_pixels=hi)
                    cases.append({"height": h, "width": w, "min_pixels": lo, "max_pixels": hi,
                                  "resized": [int(rh), int(rw)]})
                except ValueError as e:
                    cases.append({"height": h, "width": w, "min_pixels": lo, "max_pixels": hi,
                                  "error": str(e)})
    (ROOT / "smart_resize.json").write_text(json.dumps(
        {"source": f"transformers {transformers.__version__} "
                   "models.qwen2_vl.image_processing_qwen2_vl.smart_resize(factor=28)",
         "cases": cases}, indent=None, separators=(",", ":")) + "\n")
    print(f"smart_resize: {len(cases)} cases")


def resize_reference(images_dir: Path) -> None:
    img = make_image(75, 100, seed=7)
    img.save(images_dir / "needs_resize_100x75.png")
    ip = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 256)
    out = ip(images=[img], return_tensors="pt")
    save_file({"pixel_values": out["pixel_values"].float().contiguous(),
               "image_grid_thw": out["image_grid_thw"].to(torch.int64).contiguous()},
              str(ROOT / "resize_reference.safetensors"),
              metadata={"image": "needs_resize_100x75.png", "min_pixels": str(56 * 56),
                        "max_pixels": str(28 * 28 * 256), "transformers_version": transformers.__version__})


def main() -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    ROOT.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = ROOT / "tokenizer"
    if tokenizer_dir.exists():
        shutil.rmtree(tokenizer_dir)
    tok = build_tokenizer(tokenizer_dir)
    images_dir = ROOT / "images"
    images_dir.mkdir(exist_ok=True)
    images = {}
    for fname, (h, w, seed) in {
        "square_56x56.png": (56, 56, 1),
        "wide_112x84.png": (84, 112, 2),
        "tall_84x140.png": (140, 84, 3),
    }.items():
        img = make_image(h, w, seed)
        img.save(images_dir / fname)
        images[fname] = Image.open(images_dir / fname).convert("RGB")

    specs = [
        dict(name="qwen2-vl-tiny", family="qwen2_vl", tied=True, dtype="float32", config="legacy",
             preprocessor="old", template="chat_template.json", shard=None,
             images=["square_56x56.png", "wide_112x84.png"],
             texts=["This is an image from your frontal perspective.", "Task: find the apple."]),
        dict(name="qwen2_5-vl-tiny", family="qwen2_5_vl", tied=False, dtype="float32", config="nested",
             preprocessor="v5", template="chat_template.jinja", shard="300KB",
             images=["tall_84x140.png", "wide_112x84.png"],
             texts=["Front view.", "<think> where is the cube? </think>"]),
        dict(name="qwen2_5-vl-tiny-bf16", family="qwen2_5_vl", tied=True, dtype="bfloat16", config="legacy",
             preprocessor="flat", template="tokenizer_config.json", shard=None,
             images=["tall_84x140.png", "square_56x56.png"],
             texts=["Position: [0.275, -0.009, 0.850]", "navigate to Fridge"]),
    ]
    for spec in specs:
        build_checkpoint(spec, tokenizer_dir, tok, images)
    smart_resize_vectors()
    resize_reference(images_dir)
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB under {ROOT}")


if __name__ == "__main__":
    sys.exit(main())
