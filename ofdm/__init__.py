"""dmrx.ofdm — the 5G NR PUSCH link on Sionna: config, transmitter, channel, classic receivers,
decoding and metrics."""

from dmrx.ofdm.channel import Channel, ChannelConfig, ChannelOutput
from dmrx.ofdm.config import LinkConfig, field_error
from dmrx.ofdm.decoder import Decoded, Decoder
from dmrx.ofdm.dmrs import data_mask, dmrs_mask, dmrs_values, pilot_comb, pilot_noise
from dmrx.ofdm.metrics import ErrorCounts, count_errors
from dmrx.ofdm.receivers import LMMSEDemapper, LSReceiver, PerfectCSIReceiver, check_receiver_inputs
from dmrx.ofdm.seeding import derive_seed, seed_everything
from dmrx.ofdm.transmitter import Transmitter, TxSlot

__all__ = [
    "Channel", "ChannelConfig", "ChannelOutput", "LinkConfig", "Decoded", "Decoder",
    "data_mask", "dmrs_mask", "dmrs_values", "pilot_comb", "pilot_noise", "ErrorCounts",
    "count_errors", "LMMSEDemapper", "LSReceiver",
    "PerfectCSIReceiver", "check_receiver_inputs", "derive_seed", "seed_everything",
    "Transmitter", "TxSlot", "field_error",
]
