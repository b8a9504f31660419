"""What each number format costs the neural receiver in dB, and what the IQ bits cost.

For the shipped ref-4prb receiver on tdl-c-300ns-60kmh: FP32, then its conv weights in MXFP8
(E4M3), MXFP6 (E2M3), MXFP4 (E2M1), MXINT8, BBQ 4/3/2-bit (the bell per output channel, as
the paper, and per block of 32 input channels with E4M3 block scales, '-g32', MX's granularity
and storage), and uniform per-channel INT8/INT4,
each post-training (ptq) and after quantization-aware fine-tuning (qat); MXFP8 weights and
activations; and a SigmaQuant-style MX allocation under 4.5 bits per weight. Every quantized
receiver is written as a packed checkpoint and evaluated as loaded back from disk. Reported:
SNR at BLER = 10%, its loss against FP32 (dB), bits per weight (scales included), model bytes.
Then the ADC: the FP32 receiver on IQ samples quantized to 4..10 bits (AGC, Gaussian-optimal
clipping), loss against unquantized samples.

All receivers of a sweep see the same slots; a receiver stops counting at a point after
--max-block-errors block errors.

    python benchmarks/quant_bler.py [--slots 400] [--qat-steps 400]
    python benchmarks/quant_bler.py --formats mxfp4_e2m1,int4,bbq4,bbq4-g32 --seed 2 --tag s2
        (a subset on other slots and QAT draws: no activation, allocation or ADC rows;
        writes quant_bler-<tag>.json)
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from _common import write

from dmrx.nn import load_receiver
from dmrx.quant import (
    ADC,
    ADCConfig,
    QATConfig,
    QuantizeConfig,
    QuantizedInput,
    quantize_checkpoint,
)
from dmrx.scenarios import get_link, get_scenario, parse_snr_db, simulate
from dmrx.scenarios.metrics import snr_at_bler

LINK, SCENARIO = "ref-4prb", "tdl-c-300ns-60kmh"
FORMATS = ("mxfp8_e4m3", "mxfp6_e2m3", "mxfp4_e2m1", "mxint8", "bbq4", "bbq3", "bbq2",
           "bbq4-g32", "bbq3-g32", "bbq2-g32", "int8", "int4")
ADC_BITS = range(4, 11)


def _snr10(result, name: str) -> float:
    pts = [p for p in result.points if p.receiver == name]
    return snr_at_bler([p.snr_db for p in pts], [p.counts.bler for p in pts])


def _coded_ber_sum(result, name: str) -> float:
    return sum(p.counts.coded_ber for p in result.points if p.receiver == name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=str(Path(__file__).parents[1] / "checkpoints" /
                                                f"neural-{LINK}"))
    ap.add_argument("--snr-db", default="6:13:1")
    ap.add_argument("--slots", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--max-block-errors", type=int, default=100)
    ap.add_argument("--qat-steps", type=int, default=400)
    ap.add_argument("--qat-batch-size", type=int, default=32)
    ap.add_argument("--budget-bits", type=float, default=4.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-adc", action="store_true")
    ap.add_argument("--formats", default=None,
                    help="comma-separated subset of the weight formats (needs --tag)")
    ap.add_argument("--tag", default="", help="write quant_bler-<tag>.json")
    args = ap.parse_args()
    formats = FORMATS
    if args.formats:
        formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
        if not args.tag or not set(formats) <= set(FORMATS):
            raise SystemExit(f"--formats needs --tag and formats among {FORMATS}")
    torch.set_num_threads(1)  # the machine is shared; results do not depend on threads
    link, scenario = get_link(LINK), get_scenario(SCENARIO)
    snr = parse_snr_db(args.snr_db)
    t0 = time.perf_counter()

    fp32 = load_receiver(args.checkpoint, link)
    n_params = sum(p.numel() for p in fp32.parameters())
    n_conv = sum(m.weight.numel() for m in fp32.modules() if isinstance(m, torch.nn.Conv2d))
    receivers = {"fp32": fp32}
    info = {"fp32": {"format": "fp32", "stage": "float", "bits_per_weight": 32.0,
                     "weight_bytes": 4 * n_conv, "model_bytes": 4 * n_params}}
    variants = [(f, "ptq", QuantizeConfig(f)) for f in formats]
    if formats == FORMATS:
        variants.append(("mxfp8_e4m3+act", "ptq", QuantizeConfig("mxfp8_e4m3",
                                                                 act_fmt="mxfp8_e4m3")))
    qat_cfg = QATConfig(steps=args.qat_steps, batch_size=args.qat_batch_size, seed=args.seed)
    variants += [(f, "qat", QuantizeConfig(f, qat=qat_cfg)) for f in formats]
    if formats == FORMATS:
        variants.append((f"alloc-mx-{args.budget_bits:g}", "qat",
                         QuantizeConfig("mxfp4", qat=qat_cfg, allocate=True,
                                        budget=args.budget_bits)))
    with tempfile.TemporaryDirectory() as tmp:
        for name, stage, cfg in variants:
            t = time.perf_counter()
            out = Path(tmp) / f"{name}-{stage}"
            res = quantize_checkpoint(args.checkpoint, out, cfg)
            quant = json.loads((out / "config.json").read_text())["quant"]
            key = f"{name}/{stage}"
            receivers[key] = load_receiver(out, link)  # evaluate what is on disk
            info[key] = {"format": name, "stage": stage,
                         "bits_per_weight": quant["bits_per_weight"],
                         "weight_bytes": quant["weight_bytes"],
                         "model_bytes": quant["model_bytes"],
                         "qat_final_loss": res.qat_log[-1]["loss"] if res.qat_log else None,
                         "quantize_s": round(time.perf_counter() - t, 1)}
            if res.allocation is not None:
                info[key]["allocation"] = {n: s for n, s in res.plan.items()}
                info[key]["allocation_report"] = res.allocation
            print(f"{key}: {quant['bits_per_weight']:.3f} bits/weight "
                  f"({info[key]['quantize_s']} s)", flush=True)

    r = simulate(link, scenario, receivers, snr, args.slots, batch_size=args.batch_size,
                 seed=args.seed, max_block_errors=args.max_block_errors, progress=False)
    print(r.table(), flush=True)
    ref = _snr10(r, "fp32")
    weights = {}
    for key, d in info.items():
        s = _snr10(r, key)
        weights[key] = d | {"snr_db_at_bler_10pct": s, "loss_db": s - ref}

    adc_out = None
    if not args.skip_adc and formats == FORMATS:
        adc_rx = {"unquantized": fp32}
        adc_rx |= {f"adc-{b}bit": QuantizedInput(fp32, ADC(ADCConfig(bits=b)))
                   for b in ADC_BITS}
        ra = simulate(link, scenario, adc_rx, snr, args.slots, batch_size=args.batch_size,
                      seed=args.seed, max_block_errors=args.max_block_errors, progress=False)
        print(ra.table(), flush=True)
        ref_adc = _snr10(ra, "unquantized")
        adc_out = {"receiver": "neural fp32", "agc": "per slot and antenna to unit RMS",
                   "clipping": "Gaussian-MSE-optimal level per bit width",
                   "points": [p.as_dict(link) for p in ra.points],
                   "by_bits": {name: {
                       "bits": None if name == "unquantized" else m.adc.cfg.bits,
                       "clip_db_above_rms": None if name == "unquantized" else m.adc.clip_db,
                       "snr_db_at_bler_10pct": _snr10(ra, name),
                       "loss_db": _snr10(ra, name) - ref_adc}
                       for name, m in adc_rx.items()}}

    def loss(key):
        return weights[key]["loss_db"] if key in weights else math.nan

    goals = {
        "mxfp8_within_0.1db_of_fp32": {"ptq_loss_db": loss("mxfp8_e4m3/ptq"),
                                       "met": abs(loss("mxfp8_e4m3/ptq")) <= 0.1},
        "mxfp4_after_qat_within_0.5db": {"loss_db": loss("mxfp4_e2m1/qat"),
                                         "met": loss("mxfp4_e2m1/qat") <= 0.5},
        "bbq4_at_least_as_good_as_mxfp4_and_int4": {
            "mxfp4_qat_loss_db": loss("mxfp4_e2m1/qat"), "int4_qat_loss_db": loss("int4/qat"),
            **{v: {"qat_loss_db": loss(f"{v}/qat"),
                   "bits_per_weight": weights[f"{v}/qat"]["bits_per_weight"],
                   "met": loss(f"{v}/qat") <= min(loss("mxfp4_e2m1/qat"), loss("int4/qat"))}
               for v in ("bbq4", "bbq4-g32")},
            # lower-noise views of the same comparison: the QAT's final training BCE, and the
            # coded BER (before decoding) summed over the SNR grid, on the very same slots
            "qat_final_bce": {k: weights[f"{k}/qat"]["qat_final_loss"]
                              for k in ("bbq4", "bbq4-g32", "mxfp4_e2m1", "int4")
                              if f"{k}/qat" in weights},
            "coded_ber_sum_over_snr": {k: _coded_ber_sum(r, f"{k}/qat")
                                       for k in ("bbq4", "bbq4-g32", "mxfp4_e2m1", "int4")
                                       if f"{k}/qat" in weights},
            "met": min(loss("bbq4/qat"), loss("bbq4-g32/qat"))
            <= min(loss("mxfp4_e2m1/qat"), loss("int4/qat"))},
    }
    write("quant_bler" + (f"-{args.tag}" if args.tag else ""), {
        "benchmark": "quant_bler",
        "setup": {"link": LINK, "scenario": SCENARIO, "checkpoint": args.checkpoint,
                  "snr_db": snr, "slots_per_point": args.slots,
                  "max_block_errors": args.max_block_errors, "seed": args.seed,
                  "qat": {"steps": args.qat_steps, "batch_size": args.qat_batch_size,
                          "lr": qat_cfg.lr}, "conv_weights": n_conv, "parameters": n_params,
                  "bits_per_weight_note": "conv weights: element bits plus scales (E8M0 per "
                  "32-block for MX, float32 per output channel for BBQ/INT, E4M3 per 32-block "
                  "and one float32 per tensor for BBQ -g32); model_bytes: "
                  "everything stored (biases and norms in float32)"},
        "goals": goals,
        "weights": weights,
        "adc": adc_out,
        "points": [p.as_dict(link) for p in r.points],
        "elapsed_s": round(time.perf_counter() - t0, 1),
    })


if __name__ == "__main__":
    main()
