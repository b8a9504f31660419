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

Files are Parquet (or CSV by suffix), written atomically. `dmrx.explain.metadata_build`'s
`build_dataset` sweeps scenarios x SNRs x jammers x ADC x receivers and runs drift schedules
with an adapter, one independent seed per split (train/val/test differ in seeds, SNR draws and
schedules, never by shuffling rows of one correlated run).
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
