"""dmrx.explain — CAM maps of receiver decisions over the resource grid (Grad-CAM, Grad-CAM++,
HiResCAM, Score-CAM, Fusion-CAM), receiver targets, and faithfulness / sanity metrics; per-slot
link metadata tables, MEDIC and HiCEM on them, and the metadata gate of the online adapter."""

from dmrx.explain.cam import CAM, GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM, default_layer
from dmrx.explain.faithfulness import (
    Curves,
    curve_generator,
    deletion_insertion,
    mass_share,
    model_randomization_check,
    random_maps,
    randomized_copy,
    rank_correlation,
)
from dmrx.explain.fusion_cam import FusionCAM
from dmrx.explain.gate import GatedAdapter
from dmrx.explain.hicem import ConceptExplanation, ConceptSplit, HiCEM
from dmrx.explain.medic import MEDIC, MedicExplanation, PrototypeMatch
from dmrx.explain.metadata import (
    CONCEPTS,
    FEATURES,
    LABELS,
    SCHEMA,
    MetadataRecorder,
    read_table,
    to_arrays,
    write_table,
)
from dmrx.explain.metadata_build import build_dataset
from dmrx.explain.run import METHODS, ExplainResult, Slots, draw_slots, explain_slots, make_cam
from dmrx.explain.targets import (
    BlockError,
    LLRMagnitude,
    LogLikelihood,
    block_region,
    make_target,
    prb_region,
    re_region,
    symbol_region,
)

__all__ = [
    "CAM", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "ScoreCAM", "FusionCAM", "default_layer",
    "METHODS", "make_cam", "Curves", "curve_generator", "deletion_insertion", "mass_share",
    "model_randomization_check",
    "random_maps", "randomized_copy", "rank_correlation", "ExplainResult", "Slots",
    "draw_slots", "explain_slots", "BlockError", "LLRMagnitude", "LogLikelihood",
    "block_region", "make_target", "prb_region", "re_region", "symbol_region",
    "MEDIC", "MedicExplanation", "PrototypeMatch", "HiCEM", "ConceptSplit", "ConceptExplanation",
    "SCHEMA", "FEATURES", "CONCEPTS", "LABELS", "MetadataRecorder", "build_dataset",
    "read_table", "write_table", "to_arrays", "GatedAdapter",
]
