"""Per-slot link metadata: what every slot leaves behind, as a tidy table with a fixed schema.

One row per (slot, receiver). Columns come in six groups (`SCHEMA` lists each with its Arrow
type and unit; `read_table` checks them):

- **identity**: ``run`` (free text naming the run), ``source`` ('simulate' | 'adapt'), ``slot``
  (index within the run), ``seed``, ``link``, ``scenario``, ``receiver``.
- **ground truth** (never a model input): ``snr_db`` (the asked Es/N0 per data RE),
  ``channel_model``, ``profile``, ``delay_spread_ns``, ``speed_kmh``, ``jammer_kind`` ('none'
  or a `robust` jammer kind), ``jsr_db`` (NaN without a jammer), ``adc_bits`` (0 = float
  samples).
- **features** (`FEATURES`, float32): only what a receiver observes at run time, before
  decoding, computed from tensors the slot already has (y, no, the receiver's LLRs); see
  `slot_features` and `llr_features` for each definition. No decoder output is a feature, so
  predicting a block error from them is not reading the CRC.
- **adapter state** (adaptation runs; NaN / False elsewhere): ``dmrs_loss`` (the adapter's
  pre-update hidden-DMRS BCE), ``updated``, ``rolled_back``, ``suspect`` (the DMRS integrity
  guard flagged the slot), ``gate_p`` (a gate's predicted probability of benefit, NaN without
  a gate).
- **outcome and labels**: ``crc_ok``, ``bit_errors`` (information bits), ``coded_bit_errors``
  (hard decisions of the LLRs), ``bce`` (mean BCE of the LLRs against the sent coded bits:
  known in simulation only), ``block_error`` (int8: CRC failed or any information bit wrong),
  ``should_adapt`` (int8, -1 where not measured), ``adapt_gain`` and ``adapt_bler_gain``
  (float32, NaN where not measured).
- **concepts** (`CONCEPTS`, bool, from the ground truth, for concept-bottleneck models):
  ``low_snr`` (snr_db < `LOW_SNR_DB`), ``high_mobility`` (speed >= `HIGH_MOBILITY_KMH`),
  ``long_delay_spread`` (RMS delay spread >= `LONG_DELAY_SPREAD_NS`), ``los`` (TDL/CDL profile
  D or E, the Rician ones), ``jammed`` (a jammer is on in this slot; its kind is
  ``jammer_kind``), ``quantized`` (ADC-quantized samples).

**should_adapt**, precisely: in an adaptation run (an `OnlineAdapter` that adapts on every
slot, as its own policy and guards allow), let w_t be the weights before slot t's update and
W the `ADAPT_WINDOW` slots t+H .. t+H+W-1 with H = `ADAPT_HORIZON`, all in the same segment
(same channel profile, SNR and jammer). BCE(w, W) is the mean data-bit BCE of w's LLRs on W
against the sent coded bits (known in simulation). Then
``adapt_gain = BCE(w_t, W) - BCE(w_{t+H}, W)``: how much better the receiver that kept adapting
over slots t .. t+H-1 is on the following slots than the one frozen at t ("the adapted
receiver beats the static one on the next slots"). What matters is blocks, and a BCE gain on
a slot far from failure (TDL-E at 15 dB) is worth nothing, so the label reads the same
comparison through each slot's probability of block error (`soft_block_error`, a logistic in
the slot's BCE fitted on the decoder's verdicts): ``adapt_bler_gain`` = mean soft block error
of w_t on W minus that of w_{t+H}, and ``should_adapt = adapt_bler_gain > ADAPT_MARGIN``
(half a BLER point; `label_should_adapt` relabels a table at another margin or on
adapt_gain). Neither weight set has learned from W. Rows whose window does not fit in the
segment (its last H+W-1 slots) and rows of simulate runs carry -1 / NaN. Measured before
this definition: a one-update version (w_t vs w_{t+1}) was a coin flip (AUC 0.47-0.55 on
held-out runs); the BCE gain at 1e-3 nat gave AUC 0.61-0.63, and a gate on it spent its
updates on TDL-E slots where blocks did not fail anyway. Cost: two batched forward passes
over W and one copy of the weights per slot.

Files are Parquet (or CSV by suffix), written atomically. `build_dataset` sweeps scenarios x
SNRs x jammers x ADC x receivers and runs drift schedules with an adapter, one independent seed
per split (train/val/test differ in seeds, SNR draws and schedules, never by shuffling rows of
one correlated run).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F

from dmrx.ofdm import LinkConfig, data_mask, dmrs_values, pilot_comb, pilot_noise

LOW_SNR_DB = 8.0
HIGH_MOBILITY_KMH = 60.0
LONG_DELAY_SPREAD_NS = 200.0
LOS_PROFILES = ("D", "E")
ADAPT_HORIZON = 16
ADAPT_WINDOW = 8
ADAPT_MARGIN = 0.005  # soft block errors per slot (half a BLER percentage point)
# A slot's block fails when its LLRs' BCE passes ~0.276 nat per bit (ref-4prb, MCS 14: a
# logistic fit of block_error on bce over the neural receiver's clean slots of a first build,
# 99 % accurate, width 0.014 nat); `soft_block_error` turns a BCE into that probability.
BCE_AT_FAILURE = 0.276
BCE_FAILURE_WIDTH = 0.014
SMALL_LLR = 1.0  # |llr| below this counts as an unreliable bit (P(error) > 0.27)

_F32, _F64, _I64, _I8, _B, _S = (pa.float32(), pa.float64(), pa.int64(), pa.int8(),
                                 pa.bool_(), pa.string())

SCHEMA: dict[str, tuple[pa.DataType, str]] = {
    # identity
    "run": (_S, "free text naming the run"),
    "source": (_S, "'simulate' or 'adapt'"),
    "slot": (_I64, "slot index within the run"),
    "seed": (_I64, "the run's seed"),
    "link": (_S, "link name (dmrx scenarios)"),
    "scenario": (_S, "channel scenario name"),
    "receiver": (_S, "receiver name"),
    # ground truth
    "snr_db": (_F64, "asked Es/N0 per data RE, dB"),
    "channel_model": (_S, "'tdl', 'cdl', 'rayleigh' or 'awgn'"),
    "profile": (_S, "TDL/CDL profile letter A..E, '' otherwise"),
    "delay_spread_ns": (_F64, "RMS delay spread, ns (0 for flat channels)"),
    "speed_kmh": (_F64, "UE speed, km/h"),
    "jammer_kind": (_S, "'none' or the robust jammer kind on this slot"),
    "jsr_db": (_F64, "jammer-to-signal ratio, dB (NaN without a jammer)"),
    "adc_bits": (_I64, "ADC bits per I/Q component (0: float samples)"),
    # features: observed by the receiver before decoding
    "no_db": (_F32, "noise variance the receiver is given, dB"),
    "noise_est_db": (_F32, "noise variance seen on the DMRS (second differences), dB"),
    "dmrs_noise_ratio_db": (_F32, "noise_est over no, dB (the adapter guard's ratio)"),
    "snr_est_db": (_F32, "channel gain over noise_est on the DMRS, dB"),
    "data_dmrs_power_db": (_F32, "received power on data REs over that on the DMRS (boost "
                                 "removed), dB"),
    "sc_power_peak_db": (_F32, "max over subcarriers of the power on data symbols over its "
                               "median, dB"),
    "sym_power_peak_db": (_F32, "max over data symbols of their power over its median, dB"),
    "dmrs_time_corr": (_F32, "noise-debiased correlation of the LS estimates of the first and "
                             "last DMRS symbol (1: static channel)"),
    "dmrs_freq_corr": (_F32, "noise-debiased correlation of LS estimates 4 pilots (8 "
                             "subcarriers) apart (1: flat channel)"),
    "llr_abs_mean": (_F32, "mean |llr| of the coded bits"),
    "llr_small_frac": (_F32, f"fraction of coded bits with |llr| < {SMALL_LLR:g}"),
    "llr_mi_est": (_F32, "1 - mean log2(1 + exp(-|llr|)): the rate the LLRs claim, bit/bit"),
    "quantized_input": (_F32, "1 if the receiver is fed ADC-quantized samples"),
    # adapter state
    "dmrs_loss": (_F32, "adapter's pre-update hidden-DMRS BCE (NaN: none)"),
    "updated": (_B, "the adapter updated its weights on this slot"),
    "rolled_back": (_B, "the adapter rolled back on this slot"),
    "suspect": (_B, "the DMRS integrity guard flagged this slot"),
    "gate_p": (_F32, "a gate's predicted probability that updating helps (NaN: no gate)"),
    # outcome and labels
    "crc_ok": (_B, "transport-block CRC passed"),
    "bit_errors": (_I64, "information-bit errors after decoding"),
    "coded_bit_errors": (_I64, "hard-decision errors of the LLRs"),
    "bce": (_F32, "mean BCE of the LLRs against the sent coded bits, nat"),
    "block_error": (_I8, "1: CRC failed or an information bit is wrong"),
    "should_adapt": (_I8, "1: the update at this slot lowers the BCE of the next slots "
                          "(module docstring); 0: not; -1: not measured"),
    "adapt_gain": (_F32, "BCE(frozen) - BCE(adapted) on the next slots, nat (NaN: none)"),
    "adapt_bler_gain": (_F32, "soft block errors (frozen) - (adapted) per slot on the next "
                              "slots (NaN: none); should_adapt thresholds this"),
    # concepts
    "low_snr": (_B, f"snr_db < {LOW_SNR_DB:g}"),
    "high_mobility": (_B, f"speed_kmh >= {HIGH_MOBILITY_KMH:g}"),
    "long_delay_spread": (_B, f"delay_spread_ns >= {LONG_DELAY_SPREAD_NS:g}"),
    "los": (_B, "line of sight: profile D or E"),
    "jammed": (_B, "a jammer is on in this slot"),
    "quantized": (_B, "ADC-quantized samples"),
}

FEATURES: tuple[str, ...] = (
    "no_db", "noise_est_db", "dmrs_noise_ratio_db", "snr_est_db", "data_dmrs_power_db",
    "sc_power_peak_db", "sym_power_peak_db", "dmrs_time_corr", "dmrs_freq_corr",
    "llr_abs_mean", "llr_small_frac", "llr_mi_est", "quantized_input",
)
CONCEPTS: tuple[str, ...] = ("low_snr", "high_mobility", "long_delay_spread", "los", "jammed",
                             "quantized")
LABELS: tuple[str, ...] = ("block_error", "should_adapt")
ARROW_SCHEMA = pa.schema([(name, t) for name, (t, _) in SCHEMA.items()])


# --- features -------------------------------------------------------------------------------


def _db(v: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    return 10 * torch.log10(v.clamp_min(floor))


@functools.lru_cache(maxsize=8)
def _layout(link: LinkConfig) -> tuple:
    """(DMRS values, DMRS mask, data mask, pilot comb) of a link, built once (Sionna's PUSCH
    config is slow to query per slot)."""
    p = dmrs_values(link)
    return p, p != 0, data_mask(link), pilot_comb(p)


def slot_features(link: LinkConfig, y: torch.Tensor, no: float | torch.Tensor) -> dict:
    """Receiver-independent features of each slot, from the received grid alone.

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 (after any jammer
        and ADC: what the receiver sees)
    :param no: float, 0-d or [batch] noise variance the receiver is given
    :return: name -> [batch] float32 for the y-based names of `FEATURES` (finite)
    """
    b = y.shape[0]
    no = torch.as_tensor(no, dtype=torch.float32).reshape(-1).expand(b)
    p, dm, dat, comb = _layout(link)
    sym, sc, pc = comb  # pc: [n_sym, n_sc]
    yy = y[:, 0]  # [batch, ant, sym, sc]
    ls = yy[:, :, sym][:, :, :, sc] / pc  # [batch, ant, n_sym, n_sc]
    noise = pilot_noise(y, comb)  # the adapter guard's estimate (`dmrs_noise_ratio`)
    ls_noise = noise / pc.abs().square().mean()  # variance of the noise on an LS estimate
    h_pow = (ls.abs().square().mean(dim=(1, 2, 3)) - ls_noise).clamp_min(1e-6)

    def corr(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        num = (a * c.conj()).mean(dim=(1, 2, 3)).abs()
        return (num / h_pow).clamp(0.0, 1.5)

    time_corr = corr(ls[:, :, :1], ls[:, :, -1:]) if len(sym) > 1 else torch.ones(b)
    lag = min(4, ls.shape[-1] - 1)
    freq_corr = corr(ls[..., :-lag], ls[..., lag:])
    p_data = yy.abs().square()[:, :, dat].mean(dim=(1, 2))
    p_dmrs = (yy[:, :, dm].abs().square() / p[dm].abs().square()).mean(dim=(1, 2))
    data_syms = dat.any(-1) & ~dm.any(-1)
    grid = yy.abs().square()[:, :, data_syms].mean(dim=1)  # [batch, data_sym, sc]
    per_sc, per_sym = grid.mean(dim=1), grid.mean(dim=2)
    return {
        "no_db": _db(no),
        "noise_est_db": _db(noise),
        "dmrs_noise_ratio_db": _db(noise / no),
        "snr_est_db": _db(h_pow / noise.clamp_min(1e-12)).clamp(-30, 60),
        "data_dmrs_power_db": _db(p_data) - _db(p_dmrs),
        "sc_power_peak_db": _db(per_sc.amax(-1)) - _db(per_sc.median(-1).values),
        "sym_power_peak_db": _db(per_sym.amax(-1)) - _db(per_sym.median(-1).values),
        "dmrs_time_corr": time_corr,
        "dmrs_freq_corr": freq_corr,
    }


def llr_features(llr: torch.Tensor) -> dict:
    """Features of a receiver's LLRs.

    :param llr: [batch, num_coded_bits] float32
    :return: name -> [batch] float32 (llr_abs_mean, llr_small_frac, llr_mi_est)
    """
    a = llr.detach().float().abs().nan_to_num(0.0, posinf=1e4)
    return {"llr_abs_mean": a.mean(-1),
            "llr_small_frac": (a < SMALL_LLR).float().mean(-1),
            "llr_mi_est": 1 - F.softplus(-a).mean(-1) / math.log(2)}


def soft_block_error(bce: torch.Tensor) -> torch.Tensor:
    """P(block error) of slots from their LLRs' BCE (`BCE_AT_FAILURE`, `BCE_FAILURE_WIDTH`)."""
    return torch.sigmoid((bce - BCE_AT_FAILURE) / BCE_FAILURE_WIDTH)


def data_bce(llr: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Mean BCE (nat) per slot of LLRs (log P(1)/P(0)) against coded bits.

    :param llr, c: [batch, num_coded_bits]
    :return: [batch] float32
    """
    return F.binary_cross_entropy_with_logits(llr.float(), c.float(), reduction="none").mean(-1)


def concepts_of(snr_db: float, channel, jammer_kind: str, adc_bits: int) -> dict:
    """The concept flags of a slot from its ground truth (`ChannelConfig` for `channel`)."""
    model = getattr(channel, "model", "awgn")
    return {"low_snr": snr_db < LOW_SNR_DB,
            "high_mobility": float(getattr(channel, "speed_kmh", 0.0)) >= HIGH_MOBILITY_KMH,
            "long_delay_spread": model in ("tdl", "cdl") and float(
                channel.delay_spread_ns) >= LONG_DELAY_SPREAD_NS,
            "los": model in ("tdl", "cdl") and str(channel.profile).upper() in LOS_PROFILES,
            "jammed": jammer_kind != "none",
            "quantized": adc_bits > 0}


class MetadataRecorder:
    """Collects per-slot records; `table()` / `write(path)` give the tidy table.

    Cheap by design: features come from tensors the run already holds (y, no, LLRs), so
    recording costs a few reductions per slot, no extra forward pass.

    :param link: the run's link
    :param run: free text naming the run (e.g. 'simulate seed=3')
    :param source: 'simulate' or 'adapt'
    """

    def __init__(self, link: LinkConfig, *, run: str = "", source: str = "simulate",
                 seed: int = 0):
        if source not in ("simulate", "adapt"):
            raise ValueError(f"MetadataRecorder source={source!r}: 'simulate' or 'adapt'")
        self.link, self.run, self.source, self.seed = link, run, source, int(seed)
        self._cols: dict[str, list] = {name: [] for name in SCHEMA}

    def __len__(self) -> int:
        return len(self._cols["slot"])

    def record(self, *, slot: int, y: torch.Tensor, no: float | torch.Tensor,
               llr: torch.Tensor, b: torch.Tensor, b_hat: torch.Tensor, crc_ok: torch.Tensor,
               c: torch.Tensor | None, scenario, snr_db: float, receiver: str,
               jammer_kind: str = "none", jsr_db: float = float("nan"), adc_bits: int = 0,
               y_features: Mapping[str, torch.Tensor] | None = None,
               adapter: Sequence[Mapping] | None = None,
               should_adapt: Sequence[int] | None = None,
               adapt_gain: Sequence[float] | None = None,
               adapt_bler_gain: Sequence[float] | None = None,
               gate_p: Sequence[float] | None = None) -> None:
        """Add the rows of one batch of slots for one receiver.

        :param slot: index of the batch's first slot within the run
        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 as received
        :param llr: [batch, num_coded_bits]; b, b_hat: [batch, tb_size]; crc_ok: [batch] bool
        :param c: [batch, num_coded_bits] sent coded bits (None: bce and coded errors NaN/-1)
        :param scenario: a `Scenario` (or anything with .name and .channel); its `jammer`, if
            any, is the slot's unless `jammer_kind` names one
        :param y_features: `slot_features(link, y, no)` if already computed for this batch
        :param adapter: per slot, the dict `OnlineAdapter.observe` returned
        """
        n = y.shape[0]
        spec = getattr(scenario, "jammer", None)  # a jammed scenario ('...+dmrs-jammer-0db')
        if jammer_kind == "none" and spec is not None:
            jammer_kind, jsr_db = spec.kind, spec.jsr_db
        yf = y_features if y_features is not None else slot_features(self.link, y, no)
        lf = llr_features(llr)
        bit_err = (b != b_hat).sum(-1)
        block = (bit_err > 0) | ~crc_ok.bool()
        if c is not None:
            coded = ((llr > 0).to(c.dtype) != c).sum(-1).tolist()
            bce = data_bce(llr, c).tolist()
        else:
            coded, bce = [-1] * n, [float("nan")] * n
        ch = scenario.channel
        conc = concepts_of(float(snr_db), ch, jammer_kind, adc_bits)
        model = getattr(ch, "model", "awgn")
        fading = model in ("tdl", "cdl")
        cols = self._cols
        const = {
            "run": self.run, "source": self.source, "seed": self.seed, "link": self.link.name,
            "scenario": scenario.name, "receiver": receiver, "snr_db": float(snr_db),
            "channel_model": model, "profile": str(ch.profile) if fading else "",
            "delay_spread_ns": float(ch.delay_spread_ns) if fading else 0.0,
            "speed_kmh": float(getattr(ch, "speed_kmh", 0.0)), "jammer_kind": jammer_kind,
            "jsr_db": float(jsr_db) if jammer_kind != "none" else float("nan"),
            "adc_bits": int(adc_bits), "quantized_input": float(adc_bits > 0), **conc}
        for k, v in const.items():
            cols[k].extend([v] * n)
        cols["slot"].extend(range(slot, slot + n))
        for k, v in {**yf, **lf}.items():
            cols[k].extend(v.float().tolist())
        ad = adapter or [{}] * n
        cols["dmrs_loss"].extend(float(a.get("dmrs_loss", float("nan"))) for a in ad)
        for k in ("updated", "rolled_back", "suspect"):
            cols[k].extend(bool(a.get(k, False)) for a in ad)
        cols["gate_p"].extend(gate_p if gate_p is not None else [float("nan")] * n)
        cols["crc_ok"].extend(crc_ok.bool().tolist())
        cols["bit_errors"].extend(bit_err.tolist())
        cols["coded_bit_errors"].extend(int(v) for v in coded)
        cols["bce"].extend(bce)
        cols["block_error"].extend(block.int().tolist())
        cols["should_adapt"].extend(should_adapt if should_adapt is not None else [-1] * n)
        cols["adapt_gain"].extend(adapt_gain if adapt_gain is not None
                                  else [float("nan")] * n)
        cols["adapt_bler_gain"].extend(adapt_bler_gain if adapt_bler_gain is not None
                                       else [float("nan")] * n)

    def table(self) -> pa.Table:
        return pa.Table.from_pydict(self._cols, schema=ARROW_SCHEMA)

    def write(self, path: str | Path) -> Path:
        return write_table(self.table(), path)


# --- files ----------------------------------------------------------------------------------


def validate(table: pa.Table, where: str = "metadata table") -> pa.Table:
    """Check `table` against `SCHEMA`; return it with the columns in schema order (extra
    columns are kept after them).

    :raises ValueError: a missing column or one of another type (named), or label values
        outside their domain
    """
    names = set(table.column_names)
    missing = [c for c in SCHEMA if c not in names]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing} (schema: "
                         "dmrx.explain.metadata.SCHEMA)")
    for name, (typ, _) in SCHEMA.items():
        got = table.schema.field(name).type
        if got != typ:
            raise ValueError(f"{where}: column {name!r} has type {got}, expected {typ}")
    for name, allowed in (("block_error", {0, 1}), ("should_adapt", {-1, 0, 1})):
        vals = set(np.unique(table.column(name).to_numpy(zero_copy_only=False)).tolist())
        if table.column(name).null_count or not vals <= allowed:
            raise ValueError(f"{where}: column {name!r} holds {sorted(vals)} (or nulls); "
                             f"allowed {sorted(allowed)}")
    extra = [c for c in table.column_names if c not in SCHEMA]
    return table.select([*SCHEMA, *extra])


def read_table(path: str | Path) -> pa.Table:
    """A metadata table from Parquet (or CSV by suffix), validated against `SCHEMA`.

    CSV holds no types, so its columns are cast to the schema's; one that does not cast
    (text in a number column) is an error naming it.

    :raises ValueError: the file is missing or unreadable, or fails `validate`
    """
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"metadata table {str(path)!r} does not exist")
    try:
        if path.suffix == ".csv":
            raw = pcsv.read_csv(path)
            cols = {}
            for name in raw.column_names:
                if name in SCHEMA:
                    try:
                        cols[name] = raw.column(name).cast(SCHEMA[name][0])
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                        raise ValueError(f"{str(path)!r}: column {name!r} does not read as "
                                         f"{SCHEMA[name][0]}: {e}") from None
                else:
                    cols[name] = raw.column(name)
            table = pa.table(cols)
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ValueError(f"metadata table {str(path)!r} is not readable: {e}") from None
    return validate(table, repr(str(path)))


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Validate and write atomically (a temp file renamed), Parquet or CSV by suffix."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from dmrx.nn.checkpoint import atomic_write

    path = Path(path)
    table = validate(table)
    if path.suffix == ".csv":
        atomic_write(path, lambda p: pcsv.write_csv(table, p))
    else:
        atomic_write(path, lambda p: pq.write_table(table, p))
    return path


def to_arrays(table: pa.Table, label: str, *, features: Sequence[str] = FEATURES,
              concepts: Sequence[str] = CONCEPTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs of the rows where `label` is measured (should_adapt >= 0).

    :return: X [n, len(features)] float32, C [n, len(concepts)] float32 (0/1),
        y [n] int64 (0/1)
    :raises ValueError: unknown label, feature or concept, or a non-finite feature
    """
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}: one of {LABELS}")
    for name in (*features, *concepts):
        if name not in table.column_names:
            raise ValueError(f"column {name!r} is not in the table")
    y = table.column(label).to_numpy(zero_copy_only=False).astype(np.int64)
    keep = y >= 0
    X = np.stack([table.column(f).to_numpy(zero_copy_only=False) for f in features],
                 axis=1).astype(np.float32)[keep]
    C = np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in concepts],
                 axis=1).astype(np.float32)[keep] if concepts else np.zeros((int(keep.sum()), 0),
                                                                            np.float32)
    bad = [f for f, ok in zip(features, np.isfinite(X).all(axis=0), strict=True) if not ok]
    if bad:
        raise ValueError(f"non-finite values in feature(s) {bad}")
    return X, C, y[keep]


def label_should_adapt(table: pa.Table, margin: float = ADAPT_MARGIN,
                       gain: str = "adapt_bler_gain") -> pa.Table:
    """The table with should_adapt recomputed at another `margin` on the column `gain`
    ('adapt_bler_gain', soft block errors per slot, or 'adapt_gain', nat per bit): 1 where
    gain > margin, 0 where not, -1 where not measured."""
    if gain not in ("adapt_bler_gain", "adapt_gain"):
        raise ValueError(f"gain={gain!r}: 'adapt_bler_gain' or 'adapt_gain'")
    gain = table.column(gain).to_numpy(zero_copy_only=False)
    lab = np.where(np.isfinite(gain), (gain > margin).astype(np.int8), np.int8(-1))
    i = table.column_names.index("should_adapt")
    return table.set_column(i, "should_adapt", pa.array(lab.astype(np.int8), pa.int8()))


def concat_tables(tables: Sequence[pa.Table]) -> pa.Table:
    return pa.concat_tables([validate(t).select(list(SCHEMA)) for t in tables])


# --- the dataset builder ----------------------------------------------------------------------

SPLITS = ("train", "val", "test")
DEFAULT_SCENARIOS = ("tdl-a-30ns-3kmh", "tdl-b-100ns-30kmh", "tdl-c-300ns-60kmh",
                     "tdl-d-30ns-3kmh", "tdl-e-100ns-120kmh", "cdl-c-300ns-60kmh")
# (kind, JSR dB over the jammed REs); 'none' = no jammer. Half of the points draw 'none'.
DEFAULT_JAMMERS = (("dmrs", 0.0), ("partial-band", 0.0), ("barrage", -10.0), ("tone", 0.0),
                   ("multi-tone", 0.0), ("pulsed", 0.0), ("reactive", 0.0))
DEFAULT_RECEIVERS = ("neural=checkpoints/neural-ref-4prb-tdl-a", "ls")
DEFAULT_ADC_BITS = (3, 4, 6)


def make_jammer(kind: str, link: LinkConfig, jsr_db: float, seed: int):
    """A `robust` jammer by kind (`dmrx.robust.jammers.make_jammer` where it exists).

    :return: a module called as `jammer(y, x, h) -> y`
    """
    try:
        from dmrx.robust.jammers import make_jammer as make
    except ImportError:  # before the jammer registry: the two kinds that existed
        from dmrx.robust import DMRSJammer, PartialBandJammer

        if kind == "dmrs":
            return DMRSJammer(link, jsr_db)
        if kind == "partial-band":
            n = link.fft_size
            return PartialBandJammer(link, jsr_db, (3 * n // 8, 5 * n // 8))
        raise ValueError(f"jammer kind {kind!r} needs dmrx.robust.jammers.make_jammer") from None
    return make(kind, link, jsr_db, seed=seed)


def _draw_points(rng: np.random.Generator, n: int, scenarios, jammers, adc_bits,
                 snr_range) -> list[tuple[str, float, str, float, int]]:
    """n random (scenario, snr_db, jammer kind, jsr_db, adc_bits) points."""
    out = []
    for _ in range(n):
        sc = scenarios[int(rng.integers(len(scenarios)))]
        snr = round(float(rng.uniform(*snr_range)), 1)
        kind, jsr = ("none", float("nan"))
        if jammers and rng.random() < 0.5:
            kind, jsr = jammers[int(rng.integers(len(jammers)))]
        bits = 0
        if adc_bits and rng.random() < 0.3:
            bits = int(adc_bits[int(rng.integers(len(adc_bits)))])
        out.append((sc, snr, kind, float(jsr), bits))
    return out


def _slots(link, tx, channels, scenario, n, snr_db, kind, jsr, bits, seed):
    """n slots of one point: (y as received after jammer and ADC, no, TxSlot)."""
    from dmrx.ofdm import derive_seed, seed_everything
    from dmrx.quant.adc import ADC, ADCConfig

    seed_everything(seed)
    no = 10.0 ** (-snr_db / 10.0)
    with torch.no_grad():
        s = tx(n)
        y, h = channels[scenario](s.x, no)
        if kind != "none":
            y = make_jammer(kind, link, jsr, derive_seed(seed, "jammer"))(y, s.x, h)
        if bits:
            y = ADC(ADCConfig(bits))(y)
    return y, no, s


def build_dataset(out_dir: str | Path, *, seed: int = 0, num_slots_per_point: int = 32,
                  num_points: Mapping[str, int] | None = None,
                  scenarios: Sequence[str] = DEFAULT_SCENARIOS,
                  receivers: Sequence[str] | Mapping[str, torch.nn.Module] = DEFAULT_RECEIVERS,
                  jammers: Sequence[tuple[str, float]] = DEFAULT_JAMMERS,
                  adc_bits: Sequence[int] = DEFAULT_ADC_BITS,
                  snr_range: tuple[float, float] = (2.0, 18.0),
                  adapt_checkpoint: str | Path | torch.nn.Module | None =
                  "checkpoints/neural-ref-4prb-tdl-a",
                  adapt_variant: str = "dmrs-crc",
                  adapt_runs: Mapping[str, int] | None = None,
                  adapt_segments: int = 4, adapt_segment_slots: int = 120,
                  adapt_snr_range: tuple[float, float] = (8.0, 16.0),
                  horizon: int = ADAPT_HORIZON, window: int = ADAPT_WINDOW,
                  link: str = "ref-4prb",
                  progress: bool = True) -> dict[str, Path]:
    """Sweep scenarios x SNRs x jammers x ADC x receivers, and run adapters through random
    drift schedules, into out_dir/{train,val,test}.parquet (plus dataset.json, the build's
    arguments).

    Each split has its own seed (`derive_seed(seed, 'metadata', split)`): its points (scenario,
    SNR uniform in `snr_range`, a jammer on half of them, ADC on 30 %), slots and schedules
    are drawn from it, so no slot or correlated run is shared between splits, and the same
    seed gives the same tables.

    - 'simulate' rows: `num_points[split]` points x `num_slots_per_point` slots x receivers
      (labels: block_error; should_adapt = -1).
    - 'adapt' rows: `adapt_runs[split]` runs of an `OnlineAdapter` (`adapt_variant`, from
      `adapt_checkpoint`) through `adapt_segments` random segments of `adapt_segment_slots`
      slots (scenario, SNR in `adapt_snr_range`, a jammer on a fifth of the segments); labels
      block_error and should_adapt (module docstring: H = `horizon`, W = `window`). None: no
      adapt rows.

    :param receivers: names as `dmrx simulate --receiver` takes them ('ls', 'neural=DIR'),
        or name -> receiver module
    :param adapt_checkpoint: the adapted receiver: a checkpoint directory or a
        `NeuralReceiver`; None: no adapt rows
    :return: split -> path of its table
    :raises ValueError: a bad count, unknown scenario/receiver/jammer kind
    """
    import json

    from tqdm.auto import tqdm

    from dmrx.nn import load_receiver
    from dmrx.nn.adapt import OnlineAdapter, get_variant
    from dmrx.nn.checkpoint import atomic_write
    from dmrx.ofdm import Channel, Decoder, Transmitter, derive_seed
    from dmrx.scenarios.catalog import get_link, get_scenario
    from dmrx.scenarios.receivers import build_receiver

    num_points = dict(num_points or {"train": 96, "val": 32, "test": 32})
    adapt_runs = dict(adapt_runs or {"train": 4, "val": 2, "test": 2})
    for what, d in (("num_points", num_points), ("adapt_runs", adapt_runs)):
        for split, v in d.items():
            if split not in SPLITS or isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{what}[{split!r}]={v!r}: splits {SPLITS}, counts >= 0")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"build_dataset seed={seed!r}: a non-negative integer")
    for name, v in (("num_slots_per_point", num_slots_per_point),
                    ("adapt_segments", adapt_segments),
                    ("adapt_segment_slots", adapt_segment_slots), ("horizon", horizon),
                    ("window", window)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"build_dataset {name}={v!r}: a positive integer")
    lk = get_link(link)
    scs = {name: get_scenario(name) for name in scenarios}
    jammed = [n for n, sc in scs.items() if sc.jammer is not None]
    if jammed:  # the builder draws the jammers itself and labels the rows with them
        raise ValueError(f"build_dataset scenarios={jammed!r}: name them without a jammer "
                         "suffix; the builder puts a jammer on half of the points itself")
    rxs = dict(receivers) if isinstance(receivers, Mapping) else {
        n.partition("=")[0]: build_receiver(n, lk) for n in receivers}
    for kind, jsr in jammers:
        make_jammer(kind, lk, jsr, 0)  # unknown kinds fail before any work
    tx, decoder = Transmitter(lk), Decoder(lk)
    channels = {n: Channel(lk, s.channel) for n, s in scs.items()}
    static = adapt_checkpoint
    if isinstance(adapt_checkpoint, str | Path):
        static = load_receiver(adapt_checkpoint, lk)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in SPLITS:
        s_seed = derive_seed(seed, "metadata", split)
        rng = np.random.default_rng(s_seed)
        points = _draw_points(rng, num_points.get(split, 0), list(scenarios), list(jammers),
                              list(adc_bits), snr_range)
        rec = MetadataRecorder(lk, run=f"metadata-{split} seed={seed}", source="simulate",
                               seed=s_seed)
        bar = tqdm(points, desc=f"{split}: points", disable=not progress, unit="pt")
        for i, (sc, snr, kind, jsr, bits) in enumerate(bar):
            y, no, s = _slots(lk, tx, channels, sc, num_slots_per_point, snr, kind, jsr, bits,
                              derive_seed(s_seed, "point", i))
            yf = slot_features(lk, y, no)
            with torch.no_grad():
                llrs = {n: rx(y, no) for n, rx in rxs.items()}
                b_all, ok_all = decoder(torch.cat(list(llrs.values())))
            for j, (name, llr) in enumerate(llrs.items()):
                sl = slice(j * y.shape[0], (j + 1) * y.shape[0])
                rec.record(slot=i * num_slots_per_point, y=y, no=no, llr=llr, b=s.b,
                           b_hat=b_all[sl], crc_ok=ok_all[sl], c=s.c, scenario=scs[sc],
                           snr_db=snr, receiver=name, jammer_kind=kind, jsr_db=jsr,
                           adc_bits=bits, y_features=yf)
        tables = [rec.table()]
        for r in range(adapt_runs.get(split, 0) if static is not None else 0):
            r_seed = derive_seed(s_seed, "adapt-run", r)
            adapter = OnlineAdapter(static, get_variant(adapt_variant, seed=r_seed % 2**31))
            tables.append(_adapt_run(lk, tx, decoder, channels, scs, adapter, r_seed,
                                     list(scenarios), list(jammers), adapt_segments,
                                     adapt_segment_slots, adapt_snr_range, horizon, window,
                                     run=f"metadata-{split} adapt {r} seed={seed}",
                                     receiver=f"adaptive-{adapt_variant}",
                                     progress=progress))
        paths[split] = write_table(concat_tables(tables), out_dir / f"{split}.parquet")
    info = {"seed": seed, "num_slots_per_point": num_slots_per_point, "num_points": num_points,
            "scenarios": list(scenarios), "receivers": list(rxs),
            "jammers": [list(j) for j in jammers], "adc_bits": list(adc_bits),
            "snr_range": list(snr_range),
            "adapt_variant": adapt_variant, "adapt_runs": adapt_runs,
            "adapt_segments": adapt_segments, "adapt_segment_slots": adapt_segment_slots,
            "adapt_snr_range": list(adapt_snr_range), "horizon": horizon, "window": window,
            "adapt_margin": ADAPT_MARGIN,
            "link": link,
            "adapt_receiver": adapt_checkpoint if isinstance(adapt_checkpoint, str | None)
            else str(adapt_checkpoint) if isinstance(adapt_checkpoint, Path) else "module",
            "rows": {s: read_table(p).num_rows for s, p in paths.items()},
            "features": list(FEATURES), "concepts": list(CONCEPTS), "labels": list(LABELS)}
    atomic_write(out_dir / "dataset.json", lambda p: p.write_text(json.dumps(info, indent=2)))
    return paths


def _adapt_run(lk, tx, decoder, channels, scs, adapter, seed, scenarios, jammers, segments,
               segment_slots, snr_range, horizon, window, *, run: str, receiver: str,
               progress: bool) -> pa.Table:
    """One adapter through a random drift schedule, with the counterfactual should_adapt."""
    from tqdm.auto import tqdm

    from dmrx.ofdm import derive_seed

    rng = np.random.default_rng(seed)
    rec = MetadataRecorder(lk, run=run, source="adapt", seed=seed)
    bar = tqdm(total=segments * segment_slots, desc=run, disable=not progress, unit="slot")
    slot = 0
    prev = None
    params = list(adapter.rx.parameters())
    for k in range(segments):
        choices = [s for s in scenarios if s != prev] or scenarios
        sc = choices[int(rng.integers(len(choices)))]
        prev = sc
        snr = round(float(rng.uniform(*snr_range)), 1)
        kind, jsr = "none", float("nan")
        if jammers and rng.random() < 0.2:
            kind, jsr = jammers[int(rng.integers(len(jammers)))]
        y, no, s = _slots(lk, tx, channels, sc, segment_slots, snr, kind, jsr, 0,
                          derive_seed(seed, "segment", k))
        yf = slot_features(lk, y, no)
        c_true = s.c
        rows, snaps = [], {}
        gains = [(float("nan"), float("nan"))] * segment_slots
        for t in range(segment_slots):
            # the weights w_t before this slot's update, kept until slot t + horizon
            snaps[t] = [p.detach().clone() for p in params]
            u = t - horizon  # the slot whose label is measured now: frozen w_u vs adapted w_t
            w = slice(t, t + window)
            if u >= 0 and t + window <= segment_slots:
                adapted = _window_bce(adapter, y[w], no, c_true[w])
                live = [p.detach().clone() for p in params]
                _load(params, snaps[u])
                frozen = _window_bce(adapter, y[w], no, c_true[w])
                _load(params, live)
                gains[u] = (float((frozen - adapted).mean()),
                            float((soft_block_error(frozen) - soft_block_error(adapted)).mean()))
            snaps.pop(u, None)
            yt = y[t:t + 1]
            with torch.no_grad():
                llr = adapter(yt, no)
                b_hat, crc_ok = decoder(llr)
            c_hat = None
            if adapter.config.crc_labels and bool(crc_ok[0]):
                with torch.no_grad():
                    c_hat = tx(b_hat).c
            info = adapter.observe(yt, no, c_hat=c_hat, crc_ok=crc_ok)
            rows.append(dict(slot=slot, y=yt, no=no, llr=llr, b=s.b[t:t + 1], b_hat=b_hat,
                             crc_ok=crc_ok, c=c_true[t:t + 1], scenario=scs[sc], snr_db=snr,
                             receiver=receiver, jammer_kind=kind, jsr_db=jsr,
                             y_features={n: v[t:t + 1] for n, v in yf.items()},
                             adapter=[info]))
            slot += 1
            bar.update(1)
        for r, (g, gb) in zip(rows, gains, strict=True):
            label = -1 if not math.isfinite(gb) else int(gb > ADAPT_MARGIN)
            rec.record(**r, should_adapt=[label], adapt_gain=[g], adapt_bler_gain=[gb])
    bar.close()
    return rec.table()


def _load(params: list, values: list) -> None:
    with torch.no_grad():
        for p, v in zip(params, values, strict=True):
            p.copy_(v)


def _window_bce(adapter, y: torch.Tensor, no: float, c: torch.Tensor) -> torch.Tensor:
    """[slots] data BCE of the adapter's current weights on the slots y."""
    with torch.no_grad():
        return data_bce(adapter(y, no), c)
