"""The `dmrx` command line: parse, call the Python API, print and write. No logic of its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dmrx.explain.run import explain_checkpoint
from dmrx.nn import TrainConfig, build_receiver, load_receiver, train
from dmrx.nn.adapt import VARIANTS, OnlineAdapter, check_savable, get_variant, save_adapted
from dmrx.nn.calibrate import calibrate_checkpoint
from dmrx.quant import SCHEMES, QATConfig, QuantizeConfig, quantize_checkpoint
from dmrx.robust.attacks import ATTACK_RES, ATTACKS, check_attack, parse_psr_db
from dmrx.robust.evaluate import evaluate as evaluate_robustness
from dmrx.robust.evaluate import universal_for
from dmrx.robust.training import RobustConfig
from dmrx.scenarios.adapt_run import JammerWindow, run_schedule
from dmrx.scenarios.catalog import (
    JAMMER_HELP,
    LINKS,
    PATTERN_HELP,
    SCENARIOS,
    get_link,
    get_scenario,
)
from dmrx.scenarios.metadata_cli import (
    GATE_DEFAULTS,
    add_metadata_parser,
    gate_threshold,
    metadata_recorder,
    run_metadata,
)
from dmrx.scenarios.receivers import RECEIVER_NAMES
from dmrx.scenarios.receivers import build_receiver as build_named_receiver
from dmrx.scenarios.report import write_report
from dmrx.scenarios.runners import BACKENDS, run_sweep
from dmrx.scenarios.schedules import SCHEDULES, get_schedule
from dmrx.scenarios.simulate import parse_db_range, parse_snr_db, simulate
from dmrx.scenarios.sweep import load_spec
from dmrx.scenarios.tune import RULES, SAMPLERS, TuneConfig, tune


def _int_at_least(lo: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") \
                from None
        if v < lo:
            what = "a positive integer" if lo == 1 else f">= {lo}"
            raise argparse.ArgumentTypeError(f"must be {what}, got {v}")
        return v

    return parse


_positive_int, _nonneg_int = _int_at_least(1), _int_at_least(0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmrx", description="Link-level studies of neural 5G NR "
                                "receivers that learn from the DMRS while they detect.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="BLER/BER vs SNR of receivers on a scenario")
    s.add_argument("--link", default="ref-4prb", help=f"one of {sorted(LINKS)}")
    s.add_argument("--scenario", default="tdl-c-300ns-60kmh",
                   help=f"a catalog name (dmrx scenarios) or {PATTERN_HELP}, optionally "
                        "jammed: +<kind>-jammer-<JSR>db, e.g. tdl-c-300ns-60kmh+dmrs-jammer-0db")
    s.add_argument("--receiver", default="ls",
                   help=f"one or several, comma-separated, of {list(RECEIVER_NAMES)}; "
                        "all see the same slots; learned ones as name or name=CHECKPOINT")
    s.add_argument("--checkpoint", help="checkpoint directory of a 'neural'/'hybrid' receiver")
    s.add_argument("--snr-db", default=None,
                   help="start:stop:step (stop inclusive) or one value, in dB "
                        "(default: the scenario's range in 2 dB steps)")
    s.add_argument("--slots", type=_positive_int, default=1000, help="slots per SNR point")
    s.add_argument("--batch-size", type=_positive_int, default=128)
    s.add_argument("--max-block-errors", type=_positive_int, default=None,
                   help="a receiver stops counting at a point once it has this many "
                        "block errors")
    s.add_argument("--seed", type=_nonneg_int, default=0)
    s.add_argument("--json", help="write the results here")
    s.add_argument("--plot", help="write the BLER figure here (.png or .svg)")
    s.add_argument("--metadata", help="write one metadata record per slot and receiver here "
                   "(.parquet or .csv; schema: dmrx.explain.metadata)")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    t = sub.add_parser("train", help="train a neural or hybrid receiver offline")
    t.add_argument("--link", default="ref-4prb", help=f"one of {sorted(LINKS)}")
    t.add_argument("--scenario", default="tdl-c-300ns-60kmh",
                   help="one or several comma-separated scenarios; each step draws one")
    t.add_argument("--receiver", default="neural", choices=["neural", "hybrid"])
    t.add_argument("--snr-db", default="0:20", help="low:high, SNR drawn uniformly per slot")
    t.add_argument("--steps", type=_positive_int, default=5000)
    t.add_argument("--batch-size", type=_positive_int, default=64)
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument("--scheduler", default="cosine",
                   choices=["constant", "cosine", "plateau", "sgd-er"])
    t.add_argument("--width", type=_positive_int, default=None,
                   help="channels of the residual blocks (default: the receiver's)")
    t.add_argument("--blocks", type=_positive_int, default=None, help="residual blocks")
    t.add_argument("--data-aided-passes", type=_nonneg_int, default=None,
                   help="neural: refinement passes that re-estimate the channel from the "
                        "previous pass's soft symbols (default: the receiver's, 0); with --init "
                        "from a receiver without them, they start as no correction")
    t.add_argument("--epoch-steps", type=_positive_int, default=50,
                   help="steps per logged epoch (and per step of epoch schedulers)")
    t.add_argument("--checkpoint-every", type=_positive_int, default=500)
    t.add_argument("--dmrs-hide-fraction", type=float, default=0.0,
                   help="neural: hide this fraction of the DMRS REs per slot and learn to "
                        "detect them too (the online adapter's label task)")
    t.add_argument("--seed", type=_nonneg_int, default=0)
    t.add_argument("--robust", default=None, choices=["pgd", "s2o", "explain", "jammer"],
                   help="robust training: PGD/FGSM adversarial training, + S2O, + saliency "
                        "stability, or jammer augmentation only")
    t.add_argument("--attack", default=None, choices=["pgd", "fgsm"],
                   help="--robust: the perturbation trained against (default pgd)")
    t.add_argument("--psr-db", type=float, default=-20.0,
                   help="--robust: per-slot perturbation-to-signal ratio, dB")
    t.add_argument("--attack-res", default="grid", choices=ATTACK_RES,
                   help="--robust: REs the training attack may perturb: all, or only the DMRS "
                        "(a pilot-targeted adversary; --psr-db stays relative to the slot)")
    t.add_argument("--attack-steps", type=_positive_int, default=3, help="--robust: PGD steps")
    t.add_argument("--clean-weight", type=float, default=0.5,
                   help="--robust: weight of the clean BCE beside the adversarial one")
    t.add_argument("--s2o-weight", type=float, default=0.1, help="--robust s2o: term weight")
    t.add_argument("--explain-weight", type=float, default=1.0,
                   help="--robust explain: weight of the saliency-shift term")
    t.add_argument("--jammers", default="",
                   help="--robust: comma-separated jammer kinds mixed into training")
    t.add_argument("--jsr-db", default="-10:10", help="--robust: low:high JSR of --jammers")
    t.add_argument("--jam-fraction", type=float, default=0.5,
                   help="--robust: fraction of each batch passed through a jammer")
    t.add_argument("--init", default=None,
                   help="fine-tune: start from this checkpoint's weights and architecture")
    t.add_argument("--out", required=True, help="checkpoint directory (resumed if it exists)")
    t.add_argument("--tensorboard", action="store_true",
                   help="also log loss, BMD rate and lr as TensorBoard scalars in OUT/tb "
                        "(pip install 'dmrx[tensorboard]'); log.csv is always written")
    t.add_argument("--no-progress", action="store_true")

    a = sub.add_parser("adapt", help="run a drift schedule: static vs adaptive vs LS vs "
                       "perfect CSI on the same slots")
    a.add_argument("--checkpoint", required=True, help="a neural receiver checkpoint")
    a.add_argument("--schedule", default="drift-default",
                   help=f"one of {sorted(SCHEDULES)} or a .toml file")
    a.add_argument("--variants", default="crc",
                   help=f"comma-separated adaptation variants of {sorted(VARIANTS)}")
    a.add_argument("--lr", type=float, default=None, help="override the variants' lr")
    a.add_argument("--steps-per-update", type=_positive_int, default=None,
                   help="override the variants' optimizer steps per update")
    a.add_argument("--jammer", default=None,
                   help="a jammer on a window of slots, '[<kind>:]<JSR>db@<start>:<stop>', "
                        "e.g. dmrs:0db@400:500 (kind: dmrx scenarios; default dmrs)")
    a.add_argument("--no-classic", action="store_true", help="skip LS and perfect CSI")
    a.add_argument("--seed", type=_nonneg_int, default=0)
    a.add_argument("--window", type=_positive_int, default=50, help="BLER window of the plot")
    a.add_argument("--json")
    a.add_argument("--plot")
    a.add_argument("--metadata", help="write one metadata record per slot and receiver here "
                   "(.parquet or .csv; schema: dmrx.explain.metadata)")
    a.add_argument("--gate", default=None, help="a metadata model directory (dmrx metadata "
                   "train --label should_adapt --out DIR): adapters update only where it "
                   "predicts benefit")
    # the defaults are the gate judged by benchmarks/gated_adaptation.py (GATE_DEFAULTS)
    a.add_argument("--gate-threshold", type=gate_threshold, default=GATE_DEFAULTS["threshold"],
                   help="--gate: update where the running average of P(should_adapt) >= this: "
                        "a probability, or 'base-rate', the label's positive rate in the "
                        "model's training table (default)")
    a.add_argument("--gate-smoothing", type=float, default=GATE_DEFAULTS["smoothing"],
                   help="--gate: weight of the newest slot in the running average of P "
                        "(1: each slot alone; default %(default)s)")
    a.add_argument("--gate-attack", type=float, default=GATE_DEFAULTS["attack"],
                   help="--gate: weight of a slot whose P is above the running average "
                        "(larger: open fast, close slowly; --gate-smoothing's value: "
                        "symmetric; default %(default)s)")
    a.add_argument("--gate-debounce", type=_positive_int, default=GATE_DEFAULTS["debounce"],
                   help="--gate: open only after this many consecutive slots at or above the "
                        "threshold (1: at once; default %(default)s)")
    a.add_argument("--save", default=None, metavar="DIR",
                   help="after the schedule, write the adapted receiver as a checkpoint here "
                        "(one adaptive variant, no --gate): e.g. a prior burned in on its "
                        "operating point before a drift study")
    a.add_argument("--no-progress", action="store_true")

    q = sub.add_parser("quantize", help="quantize a neural receiver checkpoint (MX, BBQ, INT; "
                       "optionally per-layer under a bit budget, with QAT) to packed weights")
    q.add_argument("--checkpoint", required=True, help="the float receiver checkpoint")
    q.add_argument("--format", required=True,
                   help=f"weight format: one of {list(SCHEMES)} or mxfp8/mxfp6/mxfp4; with "
                        "--allocate, the family to choose from")
    q.add_argument("--qat-steps", type=_nonneg_int, default=0,
                   help="quantization-aware fine-tuning steps (0: post-training only)")
    q.add_argument("--batch-size", type=_positive_int, default=32, help="QAT slots per step")
    q.add_argument("--lr", type=float, default=5e-4, help="QAT learning rate")
    q.add_argument("--act-format", default=None,
                   help="MX format of the activations (default: float activations)")
    q.add_argument("--allocate", action="store_true",
                   help="choose a format per layer under --budget-bits (SigmaQuant-style)")
    q.add_argument("--budget-bits", type=float, default=None,
                   help="average bits per weight, scales included, for --allocate")
    q.add_argument("--seed", type=_nonneg_int, default=0)
    q.add_argument("--out", required=True, help="directory of the quantized checkpoint")
    q.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("explain", help="CAM maps of a receiver's decisions over the resource "
                       "grid (Grad-CAM, Grad-CAM++, HiResCAM, Score-CAM, Fusion-CAM)")
    e.add_argument("--checkpoint", required=True, help="a neural receiver checkpoint")
    e.add_argument("--scenario", default="tdl-c-300ns-60kmh",
                   help=f"a catalog name (dmrx scenarios) or {PATTERN_HELP}")
    e.add_argument("--snr-db", type=float, default=11.0, help="Es/N0 per data RE, dB")
    e.add_argument("--slots", type=_positive_int, default=16, help="slots to explain")
    e.add_argument("--method", default="fusion-cam",
                   help="grad-cam, grad-cam++, hirescam, score-cam, fusion-cam, "
                   "comma-separated, or all")
    e.add_argument("--target", default="block", choices=["re", "prb", "symbol", "block", "error"],
                   help="what is explained; 'error' = the block-error event")
    e.add_argument("--target-kind", default="log-likelihood",
                   choices=["log-likelihood", "llr-magnitude"], help="score of the region")
    e.add_argument("--symbol", type=_nonneg_int, help="OFDM symbol of --target re/symbol")
    e.add_argument("--subcarrier", type=_nonneg_int, help="subcarrier of --target re")
    e.add_argument("--prb", type=_nonneg_int, help="PRB of --target prb")
    e.add_argument("--layer", default=None, help="the explained layer, e.g. net.blocks.3.conv2 "
                   "or net.output_conv:in for a module's input (default: net.output_conv:in, the "
                   "rectified features the LLR head reads)")
    e.add_argument("--jammer", default=None, choices=["partial-band"])
    e.add_argument("--jsr-db", type=float, default=10.0, help="jammer-to-signal ratio, dB")
    e.add_argument("--jam-subcarriers", default="12:24", help="jammed band start:stop")
    e.add_argument("--jam-symbols", default=None, help="jammed OFDM symbols start:stop "
                   "(default: the whole slot)")
    e.add_argument("--faithfulness-steps", type=_nonneg_int, default=0,
                   help="deletion/insertion curve steps (0: skip the curves)")
    e.add_argument("--seed", type=_nonneg_int, default=0)
    e.add_argument("--out", help="write the figure here (.png or .svg)")
    e.add_argument("--json", help="write the maps and scores here")
    e.add_argument("--no-progress", action="store_true")

    w = sub.add_parser("sweep", help="run a scenario x receiver x SNR x seed grid from a TOML "
                       "spec; resumes: finished points are skipped")
    w.add_argument("spec", help="the sweep spec (.toml)")
    w.add_argument("--out", required=True, help="results directory (Parquet part files)")
    w.add_argument("--backend", default="local", choices=list(BACKENDS))
    w.add_argument("--workers", type=_positive_int, default=None,
                   help="local processes or local Ray CPUs (default: every core)")
    w.add_argument("--address", default=None, help="Ray cluster address, e.g. ray://host:10001 "
                   "(default: start a local Ray cluster)")
    w.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("report", help="BLER/BER waterfalls and SNR at a target BLER of a "
                       "sweep's results")
    r.add_argument("results", help="the sweep's --out directory")
    r.add_argument("--target-bler", type=float, default=0.1)
    r.add_argument("--spec-hash", default=None, help="only the points of this spec")
    r.add_argument("--to", default=None, help="where figures and tables go "
                   "(default: RESULTS/report)")

    u = sub.add_parser("tune", help="hyperparameter search for a receiver (Optuna) with "
                       "training-health diagnosis that ends hopeless trials early")
    u.add_argument("--link", default="ref-4prb", help=f"one of {sorted(LINKS)}")
    u.add_argument("--scenario", default="tdl-c-300ns-60kmh",
                   help="one or several comma-separated scenarios")
    u.add_argument("--receiver", default="neural", choices=["neural", "hybrid"])
    u.add_argument("--snr-db", default="5:20", help="low:high, SNR drawn uniformly per slot")
    u.add_argument("--trials", type=_positive_int, default=20, help="search budget")
    u.add_argument("--steps", type=_positive_int, default=300, help="training steps per trial")
    u.add_argument("--epoch-steps", type=_positive_int, default=15,
                   help="steps per epoch, the unit the diagnosis looks at (BTTackler's "
                   "thresholds are for 20 epochs per trial and scaled to other counts)")
    u.add_argument("--sampler", default="tpe", choices=list(SAMPLERS))
    u.add_argument("--no-diagnosis", action="store_true", help="never prune a trial")
    u.add_argument("--rules", default="dmrx", choices=list(RULES),
                   help="the diagnosis rule set: 'dmrx' (the default): BTTackler's rules "
                   "adapted to AdamW and to the epoch loss's noise, with dmrx's PL, VU and TP "
                   "rules; 'bttackler': BTTackler's code rules as they are (EG, VG, DR, SC, "
                   "HO, NMG). The four options below override single rules of the set")
    u.add_argument("--passive-loss-drop", type=float, default=None,
                   help="stop a trial whose loss fell less than this fraction below its "
                   "first epoch's by 3/20 of the run (dmrx's PL rule; 0: off; dmrx: 0.02)")
    u.add_argument("--adapted-rules", action=argparse.BooleanOptionalAction, default=None,
                   help="judge VG against AdamW's epsilon and NMG / SC late against the epoch "
                   "loss's sampling noise (dmrx's adaptation of BTTackler's rules; dmrx: on)")
    u.add_argument("--min-update-ratio", type=float, default=None,
                   help="stop a trial whose median per-step update / weight norm ratio "
                   "is below this in its first 3/20 of the run (dmrx's VU rule; 0: off; dmrx: "
                   "1e-3)")
    u.add_argument("--trivial-plateau", action=argparse.BooleanOptionalAction, default=None,
                   help="with a min update ratio, also stop a trial whose update ratio is below "
                   "it in the first half while its loss is still the constant predictor's "
                   "(the LLR = 0 plateau; dmrx's TP rule; dmrx: on)")
    u.add_argument("--median-stop", type=_nonneg_int, default=0, metavar="EPOCH",
                   help="from this epoch on, also stop a trial whose best BMD rate so far is "
                   "below the median of the finished trials' at the same step (the median "
                   "stopping rule: by accuracy, not health; 0: off)")
    u.add_argument("--seed", type=_nonneg_int, default=0)
    u.add_argument("--out", required=True, help="study directory (resumed if it exists)")
    u.add_argument("--no-progress", action="store_true")

    k = sub.add_parser("attack", help="BLER and BCE vs PSR of receivers under an adversarial "
                       "perturbation of the received grid (FGSM, PGD, universal)")
    k.add_argument("--checkpoint", default=None, help="a neural/hybrid receiver checkpoint")
    k.add_argument("--receiver", default=None,
                   help=f"and/or classic receivers, comma-separated, of {list(RECEIVER_NAMES)}")
    k.add_argument("--attack", default="pgd", help=f"one of {list(ATTACKS)}")
    k.add_argument("--psr-db", default="-25:-10:5",
                   help="per-slot perturbation-to-signal ratio, start:stop:step or one value, "
                        "dB (-60..20)")
    k.add_argument("--link", default="ref-4prb", help="link of classic receivers without "
                   "--checkpoint")
    k.add_argument("--scenario", default="tdl-c-300ns-60kmh",
                   help=f"a catalog name (dmrx scenarios) or {PATTERN_HELP}")
    k.add_argument("--snr-db", type=float, default=12.0, help="Es/N0 per data RE, dB")
    k.add_argument("--slots", type=_positive_int, default=200, help="slots per PSR point")
    k.add_argument("--batch-size", type=_positive_int, default=50)
    k.add_argument("--attack-res", default="grid", choices=ATTACK_RES,
                   help="REs FGSM / PGD may perturb: all, or only the DMRS (the PSR stays "
                        "relative to the whole slot)")
    k.add_argument("--steps", type=_positive_int, default=10, help="PGD steps")
    k.add_argument("--universal-iterations", type=_positive_int, default=40,
                   help="training iterations of the universal perturbation")
    k.add_argument("--seed", type=_nonneg_int, default=0)
    k.add_argument("--json", help="write the results here")
    k.add_argument("--no-progress", action="store_true")

    c = sub.add_parser("calibrate", help="fit a neural receiver's LLR scale (BCE-optimal, on "
                       "clean slots drawn as it was trained) and fold it into a new checkpoint")
    c.add_argument("--checkpoint", required=True, help="a neural receiver checkpoint")
    c.add_argument("--out", required=True, help="directory of the calibrated checkpoint")
    c.add_argument("--batches", type=_positive_int, default=20)
    c.add_argument("--batch-size", type=_positive_int, default=64)
    c.add_argument("--seed", type=_nonneg_int, default=0)

    add_metadata_parser(sub)
    sub.add_parser("scenarios", help="list the scenario and link catalogs")
    return p


def _simulate(args: argparse.Namespace) -> int:
    link = get_link(args.link)
    scenario = get_scenario(args.scenario)
    names = [n.strip() for n in args.receiver.split(",") if n.strip()]
    receivers = {n.partition("=")[0]: build_named_receiver(n, link, args.checkpoint)
                 for n in names}
    if args.snr_db is None:
        lo, hi = scenario.snr_db_range
        args.snr_db = f"{lo}:{hi}:2"
    snr_db = parse_snr_db(args.snr_db)
    rec = metadata_recorder(args.metadata, link, "simulate", args.seed)
    result = simulate(link, scenario, receivers, snr_db, args.slots, batch_size=args.batch_size,
                      seed=args.seed, max_block_errors=args.max_block_errors,
                      progress=not args.no_progress, metadata=rec)
    print(result.table())
    print(f"({result.elapsed_s:.1f} s)")
    if rec is not None:
        print(f"wrote {rec.write(args.metadata)} ({len(rec)} records)")
    _write_outputs(result, args.json, args.plot)
    return 0


def _write_outputs(result, json_path: str | None, figure: str | None = None,
                   **plot_kw) -> None:
    """Write a command's result as JSON and as a figure, where the command line asked."""
    if json_path:
        result.write_json(json_path)
        print(f"wrote {json_path}")
    if figure:
        result.plot(figure, **plot_kw)
        print(f"wrote {figure}")


def _train(args: argparse.Namespace) -> int:
    link = get_link(args.link)
    names = [n.strip() for n in args.scenario.split(",") if n.strip()]
    channels = tuple((n, get_scenario(n).channel) for n in names)
    snr = parse_db_range(args.snr_db, "--snr-db")
    net = None
    changes = {k: v for k, v in (("num_channels", args.width), ("num_blocks", args.blocks),
                                 ("data_aided_passes", args.data_aided_passes)) if v is not None}
    if args.init or changes:
        base = (load_receiver(args.init, link) if args.init
                else build_receiver(args.receiver, link)).config
        net = base.replace(**changes).as_dict()
    cfg = TrainConfig(link, channels, receiver=args.receiver, net=net, snr_db=snr,
                      steps=args.steps, batch_size=args.batch_size, optimizer=args.optimizer,
                      lr=args.lr, weight_decay=args.weight_decay, grad_clip=args.grad_clip,
                      scheduler=args.scheduler, epoch_steps=args.epoch_steps,
                      checkpoint_every=args.checkpoint_every, seed=args.seed,
                      dmrs_hide_fraction=args.dmrs_hide_fraction,
                      robust=_robust_config(args), init_checkpoint=args.init)
    result = train(cfg, args.out, progress=not args.no_progress, tensorboard=args.tensorboard)
    last = result.log[-1] if result.log else {"loss": float("nan"), "bmd_rate": float("nan")}
    print(f"trained {args.receiver} to step {result.step}: loss {last['loss']:.4f}, "
          f"BMD rate {last['bmd_rate']:.4f} bit/bit -> {args.out}")
    return 0


def _robust_config(args: argparse.Namespace) -> dict | None:
    if args.robust is None:
        if args.attack or args.jammers or args.attack_res != "grid":
            raise ValueError("--attack, --attack-res and --jammers need --robust METHOD")
        return None
    jsr = parse_db_range(args.jsr_db, "--jsr-db")
    attack = None if args.robust == "jammer" else (args.attack or "pgd")
    return RobustConfig(args.robust, attack=attack, psr_db=args.psr_db,
                        attack_res=args.attack_res, attack_steps=args.attack_steps,
                        clean_weight=args.clean_weight,
                        s2o_weight=args.s2o_weight, explain_weight=args.explain_weight,
                        jammers=tuple(j.strip() for j in args.jammers.split(",") if j.strip()),
                        jsr_db=jsr, jam_fraction=args.jam_fraction).as_dict()


def _calibrate(args: argparse.Namespace) -> int:
    fit = calibrate_checkpoint(args.checkpoint, args.out, num_batches=args.batches,
                               batch_size=args.batch_size, seed=args.seed)
    print(f"LLR scale {fit['scale']:.4f} on {fit['num_slots']} clean slots: BMD rate "
          f"{fit['bmd_rate_before']:.4f} -> {fit['bmd_rate_after']:.4f} bit/bit -> {args.out}")
    return 0


def _attack(args: argparse.Namespace) -> int:
    check_attack(args.attack)
    psr = parse_psr_db(args.psr_db)
    link = get_link(args.link)
    scenario = get_scenario(args.scenario)
    names = [n.strip() for n in args.receiver.split(",") if n.strip()] if args.receiver \
        else []
    receivers = {}
    if args.checkpoint:
        rx = load_receiver(args.checkpoint)
        link = rx.link
        # named by its directory, so that runs of several checkpoints read apart
        receivers[Path(args.checkpoint).resolve().name] = rx
    receivers |= {n.partition("=")[0]: build_named_receiver(n, link) for n in names}
    if not receivers:
        raise ValueError("dmrx attack needs --checkpoint and/or --receiver")
    universal = None
    if args.attack == "universal":
        mid = psr[len(psr) // 2]
        universal = {n: universal_for(link, scenario, rx, mid, args.snr_db,
                                      iterations=args.universal_iterations, seed=args.seed)
                     for n, rx in receivers.items()}
    threats = [("none", None)] + [(args.attack, v) for v in psr]
    result = evaluate_robustness(link, scenario, receivers, threats, args.snr_db, args.slots,
                                 batch_size=args.batch_size, seed=args.seed,
                                 pgd_steps=args.steps, universal=universal,
                                 attack_res=args.attack_res, progress=not args.no_progress)
    print(result.table())
    print(f"({result.elapsed_s:.1f} s)")
    _write_outputs(result, args.json)
    return 0


def _adapt(args: argparse.Namespace) -> int:
    schedule = get_schedule(args.schedule)
    static = load_receiver(args.checkpoint)
    if static.kind != "neural":
        raise ValueError(f"dmrx adapt needs a neural receiver checkpoint, {args.checkpoint!r} "
                         f"holds a {static.kind!r} one")
    link = static.link
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    over = {k: v for k, v in (("lr", args.lr), ("steps_per_update", args.steps_per_update))
            if v is not None}
    configs = {v: get_variant(v, seed=args.seed, **over) for v in names}
    if args.save and (len(configs) != 1 or args.gate):
        raise ValueError(f"dmrx adapt --save writes one adapted receiver: give one variant "
                         f"and no --gate (got --variants {args.variants!r}"
                         + (f", --gate {args.gate!r})" if args.gate else ")"))
    if args.save:
        check_savable(next(iter(configs.values())))  # before the run, not after it
    receivers = {"static": static}
    for v, cfg in configs.items():
        receivers["adaptive" if len(configs) == 1 else f"adaptive-{v}"] = OnlineAdapter(static,
                                                                                        cfg)
    if args.gate:
        from dmrx.explain.gate import GatedAdapter
        from dmrx.scenarios.metadata_cli import gate_adapters

        receivers = gate_adapters(receivers, args.gate, args.gate_threshold,
                                  args.gate_smoothing, args.gate_attack,
                                  args.gate_debounce)
        g = next((r for r in receivers.values() if isinstance(r, GatedAdapter)), None)
        if g is not None:
            base = " (the training table's base rate)" * (args.gate_threshold == "base-rate")
            print(f"gate {args.gate}: update where the running P(should_adapt) >= "
                  f"{g.threshold:.4f}{base} for {g.debounce} slots (smoothing {g.smoothing}, "
                  f"attack {g.attack})")
    if not args.no_classic:
        receivers |= {"ls": build_named_receiver("ls", link),
                      "perfect": build_named_receiver("perfect", link)}
    jammer = JammerWindow.parse(args.jammer) if args.jammer else None
    rec = metadata_recorder(args.metadata, link, "adapt", args.seed)
    result = run_schedule(schedule, link, receivers, seed=args.seed, jammer=jammer,
                          progress=not args.no_progress, metadata=rec)
    print(result.table())
    if rec is not None:
        print(f"wrote {rec.write(args.metadata)} ({len(rec)} records)")
    _write_outputs(result, args.json, args.plot, window=min(args.window, schedule.num_slots))
    if args.save:
        out = save_adapted(receivers["adaptive"], args.checkpoint, args.save,
                           {"schedule": schedule.as_dict(), "seed": args.seed})
        print(f"wrote the adapted receiver to {out}")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    cfg = QuantizeConfig(args.format,
                         qat=QATConfig(steps=args.qat_steps, batch_size=args.batch_size,
                                       lr=args.lr, seed=args.seed),
                         act_fmt=args.act_format, allocate=args.allocate,
                         budget=args.budget_bits)
    result = quantize_checkpoint(args.checkpoint, args.out, cfg,
                                 progress=not args.no_progress)
    for name, scheme in result.plan.items():
        print(f"  {name:<22} {scheme}")
    if result.qat_log:
        last = result.qat_log[-1]
        print(f"QAT {last['step']} steps: loss {last['loss']:.4f}, BMD rate "
              f"{last['bmd_rate']:.4f} bit/bit")
    print(f"{result.bits_per_weight:.3f} bits per weight (scales included) -> {args.out}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    result = explain_checkpoint(
        args.checkpoint, scenario=args.scenario, snr_db=args.snr_db, num_slots=args.slots,
        methods=args.method, target=args.target, target_kind=args.target_kind,
        symbol=args.symbol, subcarrier=args.subcarrier, prb=args.prb, layer=args.layer,
        jammer=args.jammer, jsr_db=args.jsr_db, jam_subcarriers=args.jam_subcarriers,
        jam_symbols=args.jam_symbols, faithfulness_steps=args.faithfulness_steps,
        seed=args.seed, progress=not args.no_progress)
    print(result.table())
    _write_outputs(result, args.json, args.out)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    run = run_sweep(spec, args.out, backend=args.backend, workers=args.workers,
                    address=args.address, progress=not args.no_progress)
    print(f"sweep {spec.name} ({run.spec_hash}): {run.ran} points run, {run.skipped} already "
          f"done, {run.total} in the grid; {run.elapsed_s:.1f} s -> {args.out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    rep = write_report(args.results, target_bler=args.target_bler, spec_hash=args.spec_hash,
                       to=args.to)
    print(rep.table())
    for f in rep.files:
        print(f"wrote {f}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    snr = parse_db_range(args.snr_db, "--snr-db")
    cfg = TuneConfig(link=args.link, scenarios=tuple(s.strip() for s in args.scenario.split(",")
                                                     if s.strip()),
                     receiver=args.receiver, snr_db=snr, trials=args.trials, steps=args.steps,
                     epoch_steps=args.epoch_steps, seed=args.seed,
                     diagnosis=not args.no_diagnosis, sampler=args.sampler,
                     rules=args.rules, passive_loss_drop=args.passive_loss_drop,
                     adapted_rules=args.adapted_rules,
                     min_update_ratio=args.min_update_ratio,
                     trivial_plateau=args.trivial_plateau,
                     median_stop_epoch=args.median_stop)
    result = tune(cfg, args.out, progress=not args.no_progress)
    print(result.table())
    best = result.best
    if best is not None:
        print(f"best: trial {best['number']}, BMD rate {best['value']:.4f} bit/bit, "
              f"{best['params']}")
    changed = any(getattr(cfg, k) != v for k, v in RULES[cfg.rules].items())
    rules = (f"the {cfg.rules} rule set{' with rules changed by hand' if changed else ''}"
             if cfg.diagnosis else "off")
    ms = f"; median stopping from epoch {cfg.median_stop_epoch}" if cfg.median_stop_epoch else ""
    print(f"({result.elapsed_s:.1f} s; diagnosis: {rules}{ms}) -> {args.out}/tune.json")
    return 0


def _scenarios(_: argparse.Namespace) -> int:
    print("Links:")
    for link in LINKS.values():
        print(f"  {link.name:<14} {link.num_prbs} PRB, {link.subcarrier_spacing_khz} kHz, "
              f"MCS {link.mcs_index} (table {link.mcs_table}: {2**link.num_bits_per_symbol}-QAM, "
              f"R={link.code_rate:.3f}), DMRS symbols {link.dmrs_symbol_indices}, "
              f"{link.num_rx_ant} rx ant, TB {link.tb_size} bits")
    print("Scenarios:")
    for sc in SCENARIOS.values():
        c = sc.channel
        what = c.model.upper() + (f"-{c.profile} {c.delay_spread_ns:g} ns {c.speed_kmh:g} km/h"
                                  if c.model in ("tdl", "cdl") else "")
        print(f"  {sc.name:<20} {what:<28} SNR {sc.snr_db_range[0]:g}..{sc.snr_db_range[1]:g}"
              f" dB  {sc.description}")
    print(f"Any other TDL/CDL point: {PATTERN_HELP}")
    print(f"Any scenario with a jammer: {JAMMER_HELP}")
    print("Drift schedules:")
    for sch in SCHEDULES.values():
        print(f"  {sch.name:<20} " + " -> ".join(f"{s.scenario} ({s.slots} slots, "
                                                  f"{s.snr_db:g} dB)" for s in sch.segments))
    return 0


def _join_db_ranges(argv: Sequence[str]) -> list[str]:
    """argparse takes '-25:-10:5' for an option: '--psr-db -25:-10:5' -> '--psr-db=-25:-10:5'
    (for every option ending in '-db')."""
    out, argv = [], list(argv)
    i = 0
    while i < len(argv):
        a = argv[i]
        if (a.startswith("--") and a.endswith("-db") and "=" not in a and i + 1 < len(argv)
                and argv[i + 1].startswith("-") and argv[i + 1][1:2] in "0123456789."):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
        else:
            out.append(a)
            i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `dmrx`; returns the exit status (2 on bad input, with a message)."""
    try:
        args = _parser().parse_args(_join_db_ranges(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:  # argparse has printed its usage message
        return int(e.code or 0)
    try:
        return {"simulate": _simulate, "train": _train, "adapt": _adapt,
                "quantize": _quantize, "explain": _explain,
                "sweep": _sweep, "report": _report, "tune": _tune,
                "scenarios": _scenarios, "attack": _attack, "calibrate": _calibrate,
                "metadata": run_metadata}[args.command](args)
    except (ValueError, OSError, ImportError) as e:  # ImportError: a missing optional extra
        print(f"dmrx {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
