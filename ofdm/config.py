"""The link: a frozen, validated description of one 5G NR PUSCH slot.

`LinkConfig` holds what a link-level study varies (PRBs, numerology, DMRS, MCS, antennas,
carrier) and builds Sionna's `PUSCHConfig` from it; Sionna then owns the 38.211/38.214 details
(DMRS sequences, TB size, coded bits). We validate first, so a bad value fails here with the
field's name instead of deep inside Sionna.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from sionna.phy.nr import PUSCHConfig

# 38.211 Table 4.2-1: subcarrier spacings of the numerologies mu = 0..4 (normal cyclic prefix).
SUBCARRIER_SPACINGS_KHZ = (15, 30, 60, 120, 240)
# 38.214 Tables 5.1.3.1-1..3 (table 3 is low-SE; Sionna implements 1..4, 4 is 1024-QAM).
MCS_INDEX_MAX = {1: 28, 2: 27, 3: 28, 4: 26}
NUM_OFDM_SYMBOLS = 14  # one slot, normal cyclic prefix


def field_error(config: object, field: str, allowed: str) -> ValueError:
    """The error every dmrx config raises for a bad field: it names the config, the field, the
    value and what is allowed (`TrainConfig.lr=-1 is not allowed: > 0`)."""
    return ValueError(f"{type(config).__name__}.{field}={getattr(config, field)!r} is not "
                      f"allowed: {allowed}")


def _fail(field: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"LinkConfig.{field}={value!r} is not allowed: {allowed}")


@dataclass(frozen=True)
class LinkConfig:
    """One single-layer PUSCH link (1 tx antenna, `num_rx_ant` rx antennas), mapping type A.

    :param num_prbs: allocated PRBs (12 subcarriers each), 1..275; the allocation is the grid
    :param subcarrier_spacing_khz: 15, 30, 60, 120 or 240
    :param num_ofdm_symbols: PUSCH symbols in the slot (from symbol 0), 4..14 for mapping type A
    :param dmrs_config_type: 1 (comb of 2, 6 REs per PRB and CDM group) or 2 (4 REs)
    :param dmrs_length: 1 (single-symbol) or 2 (double-symbol DMRS)
    :param dmrs_additional_position: 0..3 (``dmrs-AdditionalPosition``); at most 1 if length 2
    :param dmrs_type_a_position: 2 or 3, the first DMRS symbol
    :param mcs_index: row of the 38.214 MCS table
    :param mcs_table: 1 (64-QAM), 2 (256-QAM), 3 (low spectral efficiency), 4 (1024-QAM)
    :param num_rx_ant: receive antennas, 1..16
    :param carrier_frequency_hz: carrier frequency, 0.41 GHz .. 100 GHz
    :param n_cell_id: physical cell id (seeds the DMRS sequence), 0..1007
    :param name: label used in results; does not affect the link

    The DMRS symbols carry no data (both CDM groups left empty), so the DMRS is boosted by
    3 dB as 38.214 Table 6.2.2-1 prescribes; the data REs carry unit-energy QAM.
    """

    num_prbs: int = 4
    subcarrier_spacing_khz: int = 30
    num_ofdm_symbols: int = NUM_OFDM_SYMBOLS
    dmrs_config_type: int = 1
    dmrs_length: int = 1
    dmrs_additional_position: int = 1
    dmrs_type_a_position: int = 2
    mcs_index: int = 14
    mcs_table: int = 1
    num_rx_ant: int = 1
    carrier_frequency_hz: float = 3.5e9
    n_cell_id: int = 1
    name: str = "custom"

    def __post_init__(self) -> None:
        def integer(field: str, lo: int, hi: int) -> None:
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
                raise _fail(field, v, f"an integer in [{lo}, {hi}]")

        integer("num_prbs", 1, 275)
        if self.subcarrier_spacing_khz not in SUBCARRIER_SPACINGS_KHZ:
            raise _fail("subcarrier_spacing_khz", self.subcarrier_spacing_khz,
                        f"one of {SUBCARRIER_SPACINGS_KHZ} kHz")
        integer("num_ofdm_symbols", 4, NUM_OFDM_SYMBOLS)
        integer("dmrs_config_type", 1, 2)
        integer("dmrs_length", 1, 2)
        integer("dmrs_additional_position", 0, 3)
        integer("dmrs_type_a_position", 2, 3)
        if self.dmrs_length == 2 and self.dmrs_additional_position > 1:
            raise _fail("dmrs_additional_position", self.dmrs_additional_position,
                        "0 or 1 with double-symbol DMRS (38.211 Table 6.4.1.1.3-4)")
        if self.dmrs_type_a_position == 3 and self.dmrs_additional_position == 3:
            raise _fail("dmrs_additional_position", 3,
                        "0..2 when dmrs_type_a_position is 3 (38.211 6.4.1.1.3)")
        if self.dmrs_type_a_position == 3 and self.num_ofdm_symbols < 5:
            raise _fail("dmrs_type_a_position", 3,
                        "2 when the allocation has 4 symbols (38.211 6.4.1.1.3)")
        if self.mcs_table not in MCS_INDEX_MAX:
            raise _fail("mcs_table", self.mcs_table, f"one of {sorted(MCS_INDEX_MAX)}")
        integer("mcs_index", 0, MCS_INDEX_MAX[self.mcs_table])
        integer("num_rx_ant", 1, 16)
        if not 0.41e9 <= float(self.carrier_frequency_hz) <= 100e9:
            raise _fail("carrier_frequency_hz", self.carrier_frequency_hz,
                        "0.41e9 .. 100e9 Hz (FR1 and FR2)")
        integer("n_cell_id", 0, 1007)
        # Let Sionna check the combination against 38.211/38.214 and re-raise with our name.
        try:
            cfg = self.pusch_config()
            cfg.check_config()
            _ = cfg.tb_size
        except (ValueError, AssertionError) as e:
            raise ValueError(f"LinkConfig {self!r} is not a valid PUSCH configuration: {e}") from e

    def replace(self, **changes: object) -> LinkConfig:
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def pusch_config(self) -> PUSCHConfig:
        """A fresh Sionna `PUSCHConfig` for this link (mutable, so never shared)."""
        cfg = PUSCHConfig()
        cfg.carrier.n_size_grid = self.num_prbs
        cfg.carrier.subcarrier_spacing = self.subcarrier_spacing_khz
        cfg.carrier.n_cell_id = self.n_cell_id
        cfg.symbol_allocation = [0, self.num_ofdm_symbols]
        cfg.mapping_type = "A"
        cfg.dmrs.config_type = self.dmrs_config_type
        cfg.dmrs.length = self.dmrs_length
        cfg.dmrs.additional_position = self.dmrs_additional_position
        cfg.dmrs.type_a_position = self.dmrs_type_a_position
        cfg.dmrs.num_cdm_groups_without_data = 2 if self.dmrs_config_type == 1 else 3
        cfg.tb.mcs_table = self.mcs_table
        cfg.tb.mcs_index = self.mcs_index
        return cfg

    # --- derived quantities (cached: the config is frozen) ---------------------------------

    @cached_property
    def _pusch(self) -> PUSCHConfig:
        return self.pusch_config()

    @property
    def fft_size(self) -> int:
        """Subcarriers of the grid (12 per PRB; no guard carriers)."""
        return 12 * self.num_prbs

    @property
    def num_bits_per_symbol(self) -> int:
        return int(self._pusch.tb.num_bits_per_symbol)

    @property
    def code_rate(self) -> float:
        """Target code rate of the MCS (38.214)."""
        return float(self._pusch.tb.target_coderate)

    @property
    def tb_size(self) -> int:
        """Information bits per slot (transport block size, without CRC)."""
        return int(self._pusch.tb_size)

    @property
    def num_coded_bits(self) -> int:
        """Coded bits per slot, i.e. LLRs a receiver returns per slot."""
        return int(self._pusch.num_coded_bits)

    @property
    def dmrs_symbol_indices(self) -> list[int]:
        """OFDM symbols carrying DMRS (38.211 Table 6.4.1.1.3-3/-4)."""
        return list(self._pusch.dmrs_symbol_indices)

    @property
    def slot_duration_s(self) -> float:
        """1 ms / 2^mu."""
        return 1e-3 * 15 / self.subcarrier_spacing_khz

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(fft_size=self.fft_size, num_bits_per_symbol=self.num_bits_per_symbol,
                 code_rate=self.code_rate, tb_size=self.tb_size,
                 num_coded_bits=self.num_coded_bits,
                 dmrs_symbol_indices=self.dmrs_symbol_indices)
        return d
