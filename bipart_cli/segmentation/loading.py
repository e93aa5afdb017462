"""What does a :class:`~.segmenter.Segmenter` load, and when? The weights, the support
source (a labeled folder or an index) and the labeler, once, for the first input that must
be computed (a stored run needs none); and which labeler ``auto`` becomes.
"""

from __future__ import annotations

import time

from ..errors import ModelUnavailableError, UsageError
from ..predict import FeatureCache
from ..runtime import log
from .inputs import cache_root, support_cache_dir


class NetworkLoading:
    """The :class:`~.segmenter.Segmenter`'s loading: weights, support source, labeler."""

    def load_network(self) -> None:
        """Load the weights, open the support and make the labeler (once; a stored run needs none)."""
        if self.device is not None:
            return
        from ..index import encoder_identity
        from ..runtime import (
            import_pipeline_libraries,
            keep_freed_tensor_memory,
            resolve_device,
            seed_everything,
        )
        from ..weights import resolve_weights

        options = self.options
        with self.stages("load", "torch"):
            import_pipeline_libraries()
        device = resolve_device(options.device)
        keep_freed_tensor_memory()
        seed_everything(options.seed)
        with self.stages("load", "weights"):
            self.model, self.weights_info = resolve_weights(
                options.weights, options.weights_revision, seed=options.seed, device=device
            )
        r_max = self.model.config.r_max
        if len(self.part_names) > r_max:
            raise UsageError(
                f"--parts lists {len(self.part_names)} parts but the model has at most {r_max} (R_max)"
            )
        # what cached encoder features must match: the sha256 checked at load (hashed here only
        # for --weights random), the model is never changed here
        self.encoder = None
        source = str(options.support_dir or options.index or "none")
        with self.stages("support", source) as line:
            if not options.zero_shot and (
                options.support_dir is not None or options.index is not None
            ):
                self.encoder = encoder_identity(self.model, self.weights_info.encoder_sha256)
            self.bank = self._open_support(device)
            if self.bank is not None:
                line.detail = f"{source}: {len(self.bank)} shapes"
        if self.labeler_name == "auto-index":
            self.labeler_name = self._fallback_for_index()
        self.labeler = self._make_labeler()
        # the network's features and descriptors of every shape, support or target, the
        # target's farthest-point picks and the heads adapted on a support set are kept in
        # bipart's cache: a later process does not compute them again. Weights read from
        # files are fixed by the sha256 of model.safetensors and config.json: no state hash
        self.feature_cache = FeatureCache(
            self.model,
            device,
            options.adapt,
            store=cache_root() / "features",
            model_key=self.weights_info.files_key,
        )
        if self.labeler is None and self.bank is None and not options.zero_shot:
            raise UsageError(
                "nothing to adapt on: give --index or --support, or a labeler other than 'none'"
            )
        self.device = device  # last: loaded only when nothing above failed

    @property
    def mode(self) -> str:
        if self.bank is None:
            return "zero-shot"
        return "few-shot" if self.labeler is None else "vlm"

    def _choose_labeler(self) -> str:
        """The labeler to use: ``auto`` becomes the detector when its weights can be had, else
        ``none`` (few-shot) with a labeled support; a detector that cannot be had fails at once."""
        from ..labeling.detectors import DEFAULT_DETECTOR, WAYS_FORWARD, detector_unavailable

        name = self.options.labeler
        if name not in ("auto", "detector"):
            return name
        detector_options = self.options.labeler_options
        detector = str(detector_options.get("detector") or DEFAULT_DETECTOR)
        why = detector_unavailable(
            detector, detector_options.get("revision"), detector_options.get("offline")
        )
        if why is None:
            return "detector"
        if name == "auto" and self.options.support_dir is not None:
            log.info(
                "notice: %s; segmenting few-shot from the labeled --support %s (--labeler none)",
                why,
                self.options.support_dir,
            )
            return "none"
        if name == "auto" and self.options.index is not None and not self.options.zero_shot:
            self._detector_problem = why
            return "auto-index"
        raise ModelUnavailableError(f"{why}; {WAYS_FORWARD}")

    def _fallback_for_index(self) -> str:
        """``auto`` without detector weights and with an ``--index``: few-shot when it is labeled."""
        from ..labeling.detectors import WAYS_FORWARD

        settings = self.bank.index.settings if self.bank is not None else {}
        if settings.get("labeler") != "given":
            raise ModelUnavailableError(
                f"{self._detector_problem} and the --index holds {settings.get('labeler')} "
                f"pseudo labels, not labeled shapes; {WAYS_FORWARD}"
            )
        log.info(
            "notice: %s; segmenting few-shot from the labeled --index %s (--labeler none)",
            self._detector_problem,
            self.options.index,
        )
        return "none"

    def _make_labeler(self):
        if self.labeler_name == "none":
            return None
        from ..labeling import make_labeler

        options = self.options.labeler_options if self.labeler_name == "detector" else {}
        return make_labeler(self.labeler_name, **options)

    def _open_support(self, device):
        from ..support import SupportBank

        if self.options.zero_shot:
            return None
        if self.options.support_dir is not None:
            return SupportBank.from_folder(
                self.options.support_dir,
                support_cache_dir(self.options.support_dir),
                seed=self.options.seed,
                device=str(device),
                model=self.model,
                encoder=self.encoder,
            )
        if self.options.index is not None:
            return SupportBank.from_index(
                self.options.index,
                model=self.model,
                encoder=self.encoder,
                bps_cache=cache_root() / "bps",
            )
        return None

    def _load_network_for_input(self) -> None:
        """:meth:`load_network` for the first input computed, kept out of its timings: loading
        is the process's work, and the first input's times compare with the hundredth's."""
        mark = self._input_mark
        if self.device is not None or mark is None:
            with self.stages.about(None):
                self.load_network()
            return
        clock, seconds = time.perf_counter(), dict(self.stages.seconds)
        with self.stages.about(None):  # the process's work, shown as setup
            self.load_network()
        started, before = mark
        spent = {
            name: total - seconds.get(name, 0.0) for name, total in self.stages.seconds.items()
        }
        names = set(before) | set(spent)
        moved = {name: before.get(name, 0.0) + spent.get(name, 0.0) for name in names}
        loading = time.perf_counter() - clock
        self._setup_seconds += loading
        self._input_mark = (started + loading, moved)
