"""Every option declared once: parse-time checks and the ``Annotated`` options the commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..adapt import (
    BOX_REDUCTIONS,
    DESCRIPTOR_CHOICES,
    MAX_KNN_K,
    NORMALISATIONS,
    OPTIMIZERS,
    AdaptSettings,
)
from ..errors import UsageError
from ..index.command import CLI_LABELERS
from ..labeling.api import LABELERS, SEGMENT_LABELERS
from ..orientation import UP_CHOICES
from ..parts import check_part_names
from ..runtime import (
    MAX_DENSE_POINTS,
    MAX_SEED,
    check_choice,
    check_count,
    check_fraction,
    check_index_spec,
    check_out_dir,
    check_rate,
)
from ..support import STRATEGIES


def _checked(check: Callable[..., Any], *args: Any) -> Callable[..., Any]:
    """A Typer callback running ``check(option_name, value, *args)`` on a given value."""

    def callback(param: typer.CallbackParam, value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(param.opts[0], value, *args)
        except UsageError as exc:  # Typer's own usage error: exit 2 however the app is run
            raise typer.BadParameter(str(exc)) from None

    return callback


MAX_POINTS = MAX_DENSE_POINTS
MAX_BATCH_POINTS = 50_000_000  # support points drawn per inner step, never more than there are
MAX_STEPS = 10_000
MAX_SUPPORT = 1_000
MAX_LR = 100.0
FLAG = ""  # metavar of on/off flags: no "<bool>" in the help

# --- options shared by every command --------------------------------------

DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        help=f"Random seed, 0 to {MAX_SEED}; same seed, same result.",
        callback=_checked(check_count, 0, MAX_SEED),
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", metavar=FLAG, help="Machine-readable output on stdout.")
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", metavar=FLAG, help="Only errors on stderr (no progress)."),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", metavar=FLAG, help="Debug logs and tracebacks.")
]
BoxReductionOpt = Annotated[
    str,
    typer.Option(
        "--box-reduction",
        help="Eq. 2 over a shape's boxes: mean (default, stable across labelers) or sum (as written).",
        callback=_checked(check_choice, BOX_REDUCTIONS),
    ),
]
UpOpt = Annotated[
    str,
    typer.Option(
        "--up",
        help="Up axis of the targets: auto (glTF files Y-up, as the format specifies; other "
        "files Y or Z, whichever the support fits clearly better), y, z (many OBJ and STL "
        "exports), pca (PCA-align target and support, for assets turned any way) or none.",
        callback=_checked(check_choice, UP_CHOICES),
    ),
]
_PARTS = typer.Option(
    "--parts",
    "-p",
    help='Comma-separated part names, in any language, e.g. "back,seat,leg,arm" or '
    '"dossier,siège,pied".',
    callback=_checked(check_part_names),
)
PartsOpt = Annotated[str | None, _PARTS]
# adaptation options of segment and eval beyond --steps/--lr; defaults are AdaptSettings'
_ADAPT = AdaptSettings()
OptimizerOpt = Annotated[
    str,
    typer.Option(
        "--optimizer",
        help="Inner-loop optimizer: adam, or sgd (the paper's).",
        callback=_checked(check_choice, OPTIMIZERS),
    ),
]
BatchPointsOpt = Annotated[
    int,
    typer.Option(
        "--batch-points",
        help="Support points drawn per inner step (0: all of them).",
        callback=_checked(check_count, 0, MAX_BATCH_POINTS),
    ),
]
DescriptorsOpt = Annotated[
    str,
    typer.Option(
        "--descriptors",
        help="Geometric descriptors the head reads beside the network features: geo-v1 or none.",
        callback=_checked(check_choice, DESCRIPTOR_CHOICES),
    ),
]
SmoothOpt = Annotated[
    int,
    typer.Option(
        "--smooth",
        help="Rounds of neighbour averaging of the part probabilities, and of a mesh's face "
        "labels over face adjacency (0: off).",
        callback=_checked(check_count, 0, 1000),
    ),
]
NormaliseOpt = Annotated[
    str,
    typer.Option(
        "--normalise",
        help="Inner-loop loss weights: point (every labeled point the same) or box (Eq. 2: every box the same).",
        callback=_checked(check_choice, NORMALISATIONS),
    ),
]
KnnWeightOpt = Annotated[
    float,
    typer.Option(
        "--knn-weight",
        help="Share of kNN label transfer from the support points (in the head's input space) "
        "mixed into the adapted head's probabilities (0: the head alone).",
        callback=_checked(check_fraction),
    ),
]
RegisteredWeightOpt = Annotated[
    float,
    typer.Option(
        "--registered-weight",
        help="Share of label transfer from the support shapes that lie as given (not turned to "
        "the target's pose), each laid onto the target by a scale and shift per axis, mixed "
        "into the probabilities (0: off).",
        callback=_checked(check_fraction),
    ),
]
KnnKOpt = Annotated[
    int,
    typer.Option(
        "--knn-k",
        help="Support points each point's kNN label transfer averages.",
        callback=_checked(check_count, 1, MAX_KNN_K),
    ),
]
PositionOpt = Annotated[
    bool,
    typer.Option(
        "--position/--no-position",
        metavar=FLAG,
        help="The head also reads where each point lies in the shape (x, y, z standardised "
        "over it, in the pose the support is matched to).",
    ),
]
RegionAgreementOpt = Annotated[
    float,
    typer.Option(
        "--region-agreement",
        help="A mesh's labels follow its own pieces (connected surfaces of one node) where at "
        "least this share of a piece's points agree (1: off).",
        callback=_checked(check_fraction),
    ),
]
NamesOpt = Annotated[
    bool,
    typer.Option(
        "--names/--no-names",
        metavar=FLAG,
        help="A mesh's pieces whose own names (mesh or node) mention one requested part take "
        "it: a cabinet's 'door.001' is its door, a fridge's 'doorFreezer' a door.",
    ),
]
PresenceOpt = Annotated[
    float,
    typer.Option(
        "--presence",
        help="A part the target shows less than this share of its smallest share in a support "
        "shape that has it is scaled down, the further below the more, and its points go to "
        "the next likeliest part (0: keep every part).",
        callback=_checked(check_fraction),
    ),
]
MatchPoseOpt = Annotated[
    bool,
    typer.Option(
        "--match-pose/--no-match-pose",
        metavar=FLAG,
        help="Choose the support at the target's best quarter turn and turn each shape to lie "
        "as the target does (another up axis, a shape on its side), or use it as given.",
    ),
]
# --labeler names where pseudo labels come from, in every command; each accepts these
LABELER_CHOICES = {
    "segment": SEGMENT_LABELERS,
    "label": LABELERS,
    "index": CLI_LABELERS,
    "eval": ("index", "none"),
}


def _check_labeler(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    return _checked(check_choice, LABELER_CHOICES[ctx.info_name])(param, value)


LabelerOpt = Annotated[
    str,
    typer.Option(
        "--labeler",
        help="Where pseudo labels come from: detector (VLM boxes), given (the assets' own "
        "labels), simulated (noisy ground truth, for evaluation), none (few-shot from the "
        "support alone); segment's auto takes the detector when its weights can be had, else "
        "none; eval's index takes the labels stored in the index.",
        callback=_check_labeler,
    ),
]
IndexOpt = Annotated[
    str | None,
    typer.Option(
        "--index",
        help="An index: a folder or hf://datasets/OWNER/NAME[@REV] (segment: the support; "
        "train: the training shapes; eval: the test shapes).",
        callback=_checked(check_index_spec),
    ),
]
CategoryOpt = Annotated[
    str | None,
    typer.Option(
        "--category",
        help="The shapes' category: index gives it to every shape (default: its sub-folder's "
        "name); segment takes its support from that index category alone.",
    ),
]
CategoriesOpt = Annotated[
    str | None,
    typer.Option(
        "--categories",
        help="Only these categories, comma-separated (default: all; examples: all but the "
        "posed creatures, the cabinet and the appliance, which it writes only when named).",
    ),
]
RequiredPartsOpt = Annotated[str, _PARTS]
WeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Registry id, Hub id or folder; 'random' for an untrained model (index: the model "
        "whose encoder fills the feature cache).",
    ),
]
DetectorOpt = Annotated[
    str | None,
    typer.Option(
        "--detector", help="Detector Hub id or local folder (default grounding-dino-tiny)."
    ),
]
ModelConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--model-config",
        help="JSON of BiPartConfig fields for a new model (others: the paper's sizes); "
        "pretrain reads only the encoder's.",
    ),
]


def _out(what: str) -> typer.models.OptionInfo:
    """``--out``: the folder a command writes (one meaning everywhere), in its own words."""
    return typer.Option("--out", metavar="DIR", help=f"Folder to write: {what}.")


IndexOutOpt = Annotated[Path | None, _out("the index (new, empty, or a bipart index to update)")]
TrainOutOpt = Annotated[Path | None, _out("the run: log.jsonl, checkpoint/ and the trained model/")]
PretrainOutOpt = Annotated[
    Path | None, _out("the run: log.jsonl, checkpoint/ and the pre-trained encoder/")
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--out-dir",
        "-o",
        help="Output folder (default: next to the input).",
        callback=_checked(check_out_dir),
    ),
]
PointsOpt = Annotated[
    int,
    typer.Option(
        "--points",
        help="Dense points sampled (and labeled) per shape.",
        callback=_checked(check_count, 1, MAX_POINTS),
    ),
]
StepsOpt = Annotated[
    int,
    typer.Option(
        "--steps", help="Inner-loop steps K.", callback=_checked(check_count, 1, MAX_STEPS)
    ),
]
LrOpt = Annotated[
    float,
    typer.Option("--lr", help="Inner-loop learning rate.", callback=_checked(check_rate, MAX_LR)),
]
SupportSizeOpt = Annotated[
    int,
    typer.Option(
        "--support-size",
        help="Support-set size M (in training, the target is one of them).",
        callback=_checked(check_count, 1, MAX_SUPPORT),
    ),
]
StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="Support selection: part-perfect, similarity or random.",
        callback=_checked(check_choice, STRATEGIES),
    ),
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="Detector box score threshold, 0 to 1 (default 0.5).",
        callback=_checked(check_fraction),
    ),
]
WeightsRevisionOpt = Annotated[
    str | None, typer.Option("--weights-revision", help="Hub revision of --weights.")
]
DetectorRevisionOpt = Annotated[
    str | None, typer.Option("--detector-revision", help="Hub revision of --detector.")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        metavar=FLAG,
        help="Never touch the network: only local folders and the Hub cache (as HF_HUB_OFFLINE=1).",
    ),
]


EncoderOpt = Annotated[
    Path | None,
    typer.Option(
        "--encoder",
        help="Pre-trained encoder: a 'bipart pretrain' RUN_DIR/encoder, or official Point-M2AE weights.",
    ),
]
# the network's optimizer in train and pretrain: one name, one meaning in both
BatchSizeOpt = Annotated[
    int,
    typer.Option(
        "--batch-size",
        help="Shapes per optimizer step (train: target shapes, each with its support set).",
        callback=_checked(check_count, 1, 4096),
    ),
]
OuterLrOpt = Annotated[
    float,
    typer.Option(
        "--outer-lr",
        help="Learning rate of the network's optimizer (train: the outer loop's Adam; "
        "pretrain: AdamW's peak, after a linear warm-up, then cosine decay).",
        callback=_checked(check_rate, MAX_LR),
    ),
]
MaxStepsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-steps",
        help="Stop after this many optimizer steps (train: default all epochs; pretrain: 2000).",
        callback=_checked(check_count, 1, 10_000_000),
    ),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", metavar=FLAG, help="Continue from RUN_DIR/checkpoint.")
]


def _hidden(*names: str, callback: Callable[..., Any] | None = None) -> Any:
    """An old spelling kept for one release: accepted, not shown in the help."""
    return typer.Option(*names, hidden=True, callback=callback)


def _alias(new: Any, old: Any, default: Any) -> Any:
    """The value of an option given under its new name or its hidden old one."""
    if old is not None and new != default:
        raise UsageError("an option was given under both its new and its old name")
    return new if old is None else old


# --revision was --weights-revision on segment and eval and --detector-revision on label
OldRevisionOpt = Annotated[str | None, _hidden("--revision")]
