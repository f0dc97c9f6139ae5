#!/usr/bin/env python3
"""PyTorch/transformers side of `ember bench model` (run by hand, not in CI).

Builds Qwen2-VL with the real 2B shape and the *same* random weights as ember's benchmark
(every tensor is a pure function of its name and the seed: splitmix64 of fnv1a64(name) ^ seed
plus the element index, see models/src/bench.rs), then times, on the CPU with the same number of
threads:

- vision: preprocessing + the vision tower on one 800x450 image (ember's test image);
- prefill: the language model over <|vision_start|> + image tokens + <|vision_end|> + 200 text
  tokens (the same ids), with a KV cache, logits of the last token;
- decode: N greedy steps with the KV cache (tokens per second);
- peak RSS of the process.

    /root/.cache/torch-venv/bin/python models/scripts/bench_torch.py --threads 2 --decode-tokens 32

Attention is transformers' default on CPU (sdpa) unless --attn eager.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import torch

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def splitmix64_np(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def random_tensor(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """ember's RandomWeights::generate, bit for bit."""
    n = int(np.prod(shape))
    is_norm = ("norm" in name or "ln_q" in name) and name.endswith(".weight")
    if is_norm:
        return np.ones(shape, dtype=np.float32)
    if name.endswith(".bias") or len(shape) < 2:
        scale = np.float32(0.02)
    else:
        fan_in = int(np.prod(shape[1:]))
        scale = np.float32(1.0) / np.sqrt(np.float32(fan_in))
    key = np.uint64(fnv1a64(name.encode()) ^ seed)
    out = np.empty(n, dtype=np.float32)
    step = 1 << 24
    for start in range(0, n, step):
        stop = min(n, start + step)
        with np.errstate(over="ignore"):
            idx = np.arange(start, stop, dtype=np.uint64) + key
        r = splitmix64_np(idx) >> np.uint64(40)
        u = r.astype(np.float32) / np.float32(16777216.0)
        out[start:stop] = (u * np.float32(2.0) - np.float32(1.0)) * scale
    return out.reshape(shape)


def bench_prompt(image_tokens: int, text: int, seed: int) -> list[int]:
    ids = [151652] + [151655] * image_tokens + [151653]
    key = fnv1a64(b"prompt") ^ seed
    idx = (np.arange(text, dtype=np.uint64) + np.uint64(key))
    ids += [int(v) for v in (splitmix64_np(idx) % np.uint64(151643))]
    return ids


def bench_image(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([(x * 255 // max(width, 1)), (y * 255 // max(height, 1)), (x + y) % 256], axis=-1)
    return img.astype(np.uint8)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--height", type=int, default=450)
    ap.add_argument("--text-tokens", type=int, default=200)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--warmup-tokens", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    # Known values shared with models/src/bench.rs's tests.
    assert int(splitmix64_np(np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C

    cfg = Qwen2VLConfig(
        text_config=dict(
            vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
            num_attention_heads=12, num_key_value_heads=2, rms_norm_eps=1e-6, hidden_act="silu",
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        ),
        vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4),
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = args.attn
    t0 = time.perf_counter()
    dtype = getattr(torch, args.dtype)
    with torch.no_grad():
        model = Qwen2VLForConditionalGeneration(cfg)
        model.eval()
        names = dict(model.named_parameters())
        for name, p in names.items():
            # transformers 5 names the modules model.language_model / model.visual; the Hub
            # files (and ember) use model.* / visual.*
            hub = name.replace("model.language_model.", "model.").replace("model.visual.", "visual.")
            p.copy_(torch.from_numpy(random_tensor(hub, tuple(p.shape), args.seed)))
        model = model.to(dtype)
    load_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())

    proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
    image = bench_image(args.width, args.height)
    inner = model.model
    lm = inner.language_model

    def encode():
        px = proc(images=[image], return_tensors="pt")
        feats = inner.get_image_features(px["pixel_values"].to(dtype), px["image_grid_thw"])
        return torch.cat(list(feats.pooler_output), dim=0), px["image_grid_thw"]

    def run(ids, embeds, grid, steps):
        input_ids = torch.tensor([ids])
        mm = (input_ids == cfg.image_token_id).int()
        pos, delta = inner.get_rope_index(input_ids, mm_token_type_ids=mm, image_grid_thw=grid)
        x = lm.embed_tokens(input_ids)
        x[input_ids == cfg.image_token_id] = embeds.to(x.dtype)
        from transformers import DynamicCache

        cache = DynamicCache(config=lm.config)
        t = time.perf_counter()
        out = lm(inputs_embeds=x, position_ids=pos, past_key_values=cache, use_cache=True)
        logits = model.lm_head(out.last_hidden_state[:, -1:])
        prefill_s = time.perf_counter() - t
        nxt = int(logits[0, -1].argmax())
        times = []
        seq = len(ids)
        for i in range(steps):
            t = time.perf_counter()
            p = torch.full((3, 1, 1), seq + delta.item(), dtype=torch.long)
            out = lm(inputs_embeds=lm.embed_tokens(torch.tensor([[nxt]])), position_ids=p,
                     past_key_values=cache, use_cache=True)
            nxt = int(model.lm_head(out.last_hidden_state[:, -1])[0].argmax())
            seq += 1
            times.append(time.perf_counter() - t)
        return prefill_s, times

    with torch.no_grad():
        # Warm-up on a small image.
        small = bench_image(56, 56)
        px = proc(images=[small], return_tensors="pt")
        feats = inner.get_image_features(px["pixel_values"].to(dtype), px["image_grid_thw"])
        e = torch.cat(list(feats.pooler_output), dim=0)
        run(bench_prompt(e.shape[0], 8, args.seed), e, px["image_grid_thw"], args.warmup_tokens)

        t = time.perf_counter()
        embeds, grid = encode()
        vision_s = time.perf_counter() - t
        ids = bench_prompt(embeds.shape[0], args.text_tokens, args.seed)
        prefill_s, times = run(ids, embeds, grid, args.warmup_tokens + args.decode_tokens)
        decode_s = sum(times[args.warmup_tokens:])

    res = {
        "device": "pytorch-cpu", "torch": torch.__version__, "threads": args.threads,
        "attention": args.attn, "dtype": args.dtype, "parameters": n_params, "load_s": load_s,
        "image_tokens": int(embeds.shape[0]), "image_patches": int(grid.prod()),
        "vision_s": vision_s, "prompt_tokens": len(ids), "prefill_s": prefill_s,
        "prefill_tok_s": len(ids) / prefill_s, "decode_tokens": args.decode_tokens,
        "decode_s": decode_s, "decode_tok_s": args.decode_tokens / decode_s,
        "peak_rss_gb": peak_rss_gb(),
    }
    print(f"pytorch {torch.__version__} cpu, {args.threads} threads, {args.attn} attention, {args.dtype}")
    print(f"params {n_params / 1e9:.2f}B  vision {vision_s:.2f} s  prefill {prefill_s:.2f} s "
          f"({res['prefill_tok_s']:.1f} tok/s, {len(ids)} tokens)  decode {res['decode_tok_s']:.3f} tok/s "
          f"({1000 / res['decode_tok_s']:.1f} ms/token)  peak RSS {res['peak_rss_gb']:.2f} GB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
