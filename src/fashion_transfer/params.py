"""The schema of the project's parameters, checked once before any node runs."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from fashion_transfer.errors import ParameterError
from fashion_transfer.fashion_mnist import NUM_CLASSES
from fashion_transfer.model import ARCHITECTURES
from fashion_transfer.redact import holds_secret

# `--params preset=tuned`: the best recipe of a tuning study (pipelines/tune/studies.py).
TUNED_PRESET = "tuned"


class _Strict(BaseModel):
    # A mistyped key is an error, not a silently ignored value.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitParams(_Strict):
    pretrain_classes: list[int] = Field(min_length=2)
    transfer_classes: list[int] = Field(min_length=2)
    validation_fraction: float = Field(gt=0, lt=1)
    seed: int
    max_examples_per_stage: PositiveInt | None = None

    @field_validator("pretrain_classes", "transfer_classes")
    @classmethod
    def _labels_in_range(cls, classes: list[int]) -> list[int]:
        outside = [c for c in classes if not 0 <= c < NUM_CLASSES]
        if outside:
            raise ValueError(f"classes {outside} are outside 0-{NUM_CLASSES - 1}")
        if len(set(classes)) != len(classes):
            raise ValueError(f"{classes} lists a class twice")
        return classes

    @model_validator(mode="after")
    def _disjoint(self) -> SplitParams:
        shared = sorted(set(self.pretrain_classes) & set(self.transfer_classes))
        if shared:
            raise ValueError(
                f"pretrain_classes and transfer_classes overlap on {shared}; "
                "transfer must be to classes the pretrained model has not seen"
            )
        return self


class ModelParams(_Strict):
    architecture: str

    @field_validator("architecture")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {name!r}; valid: {sorted(ARCHITECTURES)}")
        return name


def _a_range(low: float, high: float):
    """A [low, high] pair of a photo variation, each within the given bounds."""

    def check(pair: tuple[float, float]) -> tuple[float, float]:
        first, second = pair
        if not low <= first <= second <= high:
            raise ValueError(f"[{first}, {second}] must be a range within [{low}, {high}]")
        return pair

    return check


class AugmentationParams(_Strict):
    """Random changes to each training image (fashion_transfer/augmentation.py). Besides
    shifts, mirror flips and erasing, the photo distortions teach a model what converting a
    photo leaves behind: each image, with `photo_probability`, is rotated, scaled and moved,
    its levels changed (contrast and gamma), given a faint residual background, blurred and
    noised, each by a random amount up to its strength (0 or [1, 1]: none)."""

    crop_padding: int = Field(default=2, ge=0, le=8)
    horizontal_flip: bool = True
    erasing_probability: float = Field(default=0.0, ge=0, le=1)
    erasing_max_side: int = Field(default=10, ge=3, le=28)
    photo_probability: float = Field(default=0.0, ge=0, le=1)
    rotation: float = Field(default=0.0, ge=0, le=45)  # degrees, either way
    scale: tuple[float, float] = (1.0, 1.0)  # the item's size, relative
    translate: float = Field(default=0.0, ge=0, le=0.3)  # a share of the side, each way
    contrast: tuple[float, float] = (1.0, 1.0)  # the brightest level, relative
    gamma: tuple[float, float] = (1.0, 1.0)
    background: float = Field(default=0.0, ge=0, le=0.5)  # residual background, 0-1 scale
    blur: float = Field(default=0.0, ge=0, le=3)  # the largest Gaussian sigma, pixels
    noise: float = Field(default=0.0, ge=0, le=0.3)  # the largest noise deviation, 0-1 scale

    _scale = field_validator("scale")(_a_range(0.3, 2.0))
    _contrast = field_validator("contrast")(_a_range(0.1, 1.0))
    _gamma = field_validator("gamma")(_a_range(0.2, 5.0))

    @property
    def photo(self) -> bool:
        """Whether any photo distortion is on."""
        return self.photo_probability > 0 and (
            self.rotation > 0
            or self.scale != (1.0, 1.0)
            or self.translate > 0
            or self.contrast != (1.0, 1.0)
            or self.gamma != (1.0, 1.0)
            or self.background > 0
            or self.blur > 0
            or self.noise > 0
        )


class OutlierExposureParams(_Strict):
    """Outlier exposure (Hendrycks et al., 2019): each training batch brings `share` times
    as many pictures that are none of the classes (outlier_sets.training_outliers), and the
    loss adds `weight` times their cross-entropy to the uniform distribution, so that the
    model learns to spread its probability over what it does not know. The pictures:
    `photo_crops` crops of bundled photographs, `shuffled` patch-shuffled training images
    and `edges` strokes drawn from the photographs' edges, drawn with the recipe's seed."""

    weight: PositiveFloat
    share: float = Field(default=1.0, gt=0, le=1)
    photo_crops: NonNegativeInt
    shuffled: NonNegativeInt
    edges: NonNegativeInt = 0

    @model_validator(mode="after")
    def _some_pictures(self) -> OutlierExposureParams:
        if not self.photo_crops + self.shuffled + self.edges:
            raise ValueError(
                "outlier exposure needs pictures: set photo_crops, shuffled or edges above 0, "
                "or outlier_exposure to null"
            )
        return self


class TrainingParams(_Strict):
    epochs: PositiveInt
    batch_size: PositiveInt
    optimizer: Literal["adam", "adamw", "sgd"]
    learning_rate: PositiveFloat
    weight_decay: NonNegativeFloat = 0.0
    schedule: Literal["constant", "onecycle", "cosine"] = "constant"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    augmentation: AugmentationParams | None = None
    # Predict (validation, test, serving) with the average of each image's logits and its
    # mirror image's; only sound for a model trained on mirrored images too (Fashion-MNIST's
    # shoes all face the same way, so a model that never saw them mirrored misreads the mirror).
    mirror_average: bool = False
    # An epoch goes through the training split once, or through reshuffles of it until it
    # has seen this many images: a small split then gets as many steps per epoch as a
    # larger one (the label-efficiency study trains subsets of 50 images this way).
    min_epoch_images: PositiveInt | None = None
    # Pictures that are none of the classes in every batch, their predictions pulled towards
    # uniform (each training pipeline makes its stage's: outlier_sets.make_outliers); null:
    # none.
    outlier_exposure: OutlierExposureParams | None = None
    # This many training images more, each a training image rendered as a phone photographs
    # it and converted as the served model converts a picture (photos.add_training_photos,
    # a node of each training pipeline); null or 0: none. At most 200,000: about 35 minutes
    # of rendering on one core, and 157 MB more images.
    training_photos: int | None = Field(default=None, ge=0, le=200_000)
    seed: int

    @model_validator(mode="after")
    def _mirror_needs_flips(self) -> TrainingParams:
        if self.mirror_average and not (self.augmentation and self.augmentation.horizontal_flip):
            raise ValueError(
                "mirror_average needs training on mirrored images: set "
                "augmentation.horizontal_flip to true, or mirror_average to false"
            )
        return self


class TransferParams(TrainingParams):
    scratch_baseline: bool = True
    # After the frozen-features head training: fine-tune the last `fine_tune_blocks`
    # convolutional blocks too, at a lower learning rate, for this many more epochs (0: no
    # fine-tuning).
    fine_tune_epochs: int = Field(default=0, ge=0)
    fine_tune_learning_rate: PositiveFloat = 1e-4
    fine_tune_blocks: PositiveInt = 1


class FitAnalysisParams(_Strict):
    overfit_gap: PositiveFloat
    overfit_val_loss_rise: PositiveFloat
    underfit_train_accuracy: float = Field(gt=0, le=1)
    trend_epochs: int = Field(ge=2)


class PhotoParams(_Strict):
    """How the photo test set is rendered (fashion_transfer/photos.py): each variation a
    phone brings, with its strength; 0 switches one off."""

    per_class: PositiveInt | None = 200  # test images of each class (seeded); null: all
    seed: int = 0
    frame_long_side: int = Field(default=320, ge=64, le=4096)  # pixels
    frame_aspect: tuple[float, float] = (1.0, 1.5)  # long side / short side
    item_size: tuple[float, float] = (0.25, 0.9)  # the item's side / the frame's short side
    rotation: float = Field(default=15.0, ge=0, le=45)  # degrees, either way
    perspective: float = Field(default=0.06, ge=0, le=0.2)  # corner shift / item side
    background_brightness: tuple[float, float] = (0.55, 1.0)  # 0-1
    dark_background_probability: float = Field(default=0.15, ge=0, le=1)
    gradient: float = Field(default=0.4, ge=0, le=1)  # light change across the frame
    tint: float = Field(default=0.12, ge=0, le=0.5)  # colour cast, per channel
    texture: float = Field(default=0.04, ge=0, le=0.3)  # blotches on the background
    item_colour: float = Field(default=0.45, ge=0, le=1)  # item / background, per channel
    noise: float = Field(default=0.02, ge=0, le=0.2)  # sensor noise, std on 0-1
    blur: float = Field(default=1.5, ge=0, le=10)  # largest Gaussian blur radius, pixels
    jpeg_quality: tuple[int, int] = (50, 95)

    _aspect = field_validator("frame_aspect")(_a_range(1.0, 4.0))
    _size = field_validator("item_size")(_a_range(0.05, 1.0))
    _brightness = field_validator("background_brightness")(_a_range(0.0, 1.0))
    _quality = field_validator("jpeg_quality")(_a_range(1, 100))


class RecognitionParams(_Strict):
    """Whether a picture is one of a model's classes (fashion_transfer/recognition.py)."""

    score: Literal[
        "msp", "max_logit", "energy", "mahalanobis", "relative_mahalanobis", "energy_mahalanobis"
    ] = "msp"
    accept: float = Field(default=0.95, gt=0.5, lt=1)  # of the validation images
    # Training images whose features give the feature scores' class means and covariance
    # (seeded); None: all of the training split.
    fit_examples: PositiveInt | None = 10_000
    digits: PositiveInt | None = None  # how many of scikit-learn's digits (seeded); None: all
    synthetic_per_kind: PositiveInt = 200  # synthetic non-garments of each kind, measured
    seed: int = 0


class EvaluationParams(_Strict):
    fit_analysis: FitAnalysisParams
    misclassified_examples: PositiveInt = 36
    ensemble: bool = True
    photos: PhotoParams = PhotoParams()
    photo_examples: PositiveInt = 24  # photos in the report's grid, per model
    recognition: RecognitionParams = RecognitionParams()


class RuntimeParams(_Strict):
    device: str = "auto"
    num_threads: PositiveInt | None = None
    precision: Literal["auto", "float32", "bfloat16"] = "auto"

    @field_validator("device")
    @classmethod
    def _available(cls, device: str) -> str:
        if device in ("auto", "cpu"):
            return device
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise ValueError(
                    f"device {device!r} asked for, but this machine has no CUDA GPU; "
                    "use 'auto' or 'cpu'"
                )
            return device
        if device == "mps":
            if not torch.backends.mps.is_available():
                raise ValueError(
                    "device 'mps' asked for, but this machine has no Apple GPU that PyTorch "
                    "can use; use 'auto' or 'cpu'"
                )
            return device
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


# PyTorch's ONNX exporters the registration can use (fashion_transfer/export.py).
OnnxExporter = Literal["torchscript", "dynamo"]


class RegistryParams(_Strict):
    register_models: bool
    alias: str = Field(min_length=1)
    parity_images: int | None = Field(ge=1)
    onnx_exporter: OnnxExporter = "torchscript"
    model_names: dict[Literal["pretrain", "transfer", "ensemble", "catalogue"], str]

    # MLflow's own rules, checked before anything runs instead of after training.
    @field_validator("alias")
    @classmethod
    def _an_alias_mlflow_takes(cls, alias: str) -> str:
        from mlflow.exceptions import MlflowException
        from mlflow.utils import validation

        # MLflow 3.18 renamed them (_validate_alias_name, _validate_alias_name_reserved).
        name = "_validate_alias_name"
        if not hasattr(validation, name):
            name = "_validate_model_alias_name"
        valid, reserved = getattr(validation, name), getattr(validation, f"{name}_reserved")
        try:
            valid(alias)
            reserved(alias)
        except MlflowException as error:
            raise ValueError(error.message) from None
        return alias

    @field_validator("model_names")
    @classmethod
    def _names_mlflow_takes(cls, names: dict[str, str]) -> dict[str, str]:
        from mlflow.exceptions import MlflowException
        from mlflow.utils import validation

        for name in names.values():
            try:
                validation._validate_model_name(name)
            except MlflowException as error:
                raise ValueError(error.message) from None
        if len(set(names.values())) != len(names):
            raise ValueError(f"two stages share a registered model name: {names}")
        return names


class SearchDimension(_Strict):
    """The range of one recipe key in a tuning study: a float (on a log scale with `log`),
    an int, or one of `choices`."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[bool | int | float | str | None] | None = None

    @model_validator(mode="after")
    def _a_real_range(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("a categorical dimension takes a non-empty list of choices only")
            return self
        if self.low is None or self.high is None or self.choices is not None:
            raise ValueError(f"a {self.type} dimension takes low and high, not choices")
        if not self.low < self.high:
            raise ValueError(f"the range [{self.low}, {self.high}] is empty: low must be < high")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range must start above 0, not at {self.low}")
        if self.type == "int" and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(f"an int range needs whole bounds, not [{self.low}, {self.high}]")
        return self

    def extremes(self) -> list:
        """The values a trial can reach at the edges of the range: each choice, or low and
        high, which are checked against the recipe's schema before a study starts."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


class PrunerParams(_Strict):
    # median: stop a trial whose best validation accuracy so far is below the median of the
    # earlier trials at the same epoch; hyperband: successive halving over epochs.
    type: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(default=5, ge=0)  # trials never pruned, to set the median
    n_warmup_steps: int = Field(default=2, ge=0)  # epochs of each trial never pruned


class TuneParams(_Strict):
    stage: Literal["transfer", "pretrain"] = "transfer"
    n_trials: PositiveInt
    timeout_minutes: PositiveFloat | None = None
    study_name: str | None = None
    sampler_seed: int | None = 0
    storage: str = Field(min_length=1)
    pruner: PrunerParams = PrunerParams()
    heartbeat_interval: PositiveInt | None = 60
    grace_period: PositiveInt | None = 180
    max_retry: int = Field(default=1, ge=0)
    # accuracy: maximise the stage's best validation accuracy. accuracy_and_seconds: also
    # minimise the trial's training seconds (an Optuna multi-objective study, whose trials
    # are not pruned: Optuna prunes single-objective studies only).
    objective: Literal["accuracy", "accuracy_and_seconds"] = "accuracy"
    # With accuracy_and_seconds, the recipe kept (best_params.yml, preset tuned) is the
    # fastest of the Pareto front within this much validation accuracy of the front's best.
    accuracy_tolerance: float = Field(default=0.0, ge=0.0, le=1.0)
    search_space: dict[Literal["transfer", "pretrain"], dict[str, SearchDimension]]

    @field_validator("storage")
    @classmethod
    def _no_password(cls, url: str) -> str:
        # The run logs its parameters to MLflow: a password in the URL would be logged too.
        if holds_secret(url):
            raise ValueError(
                "the storage URL holds a password, which would be logged with the run's "
                "parameters; leave it out and set PGPASSWORD (or ~/.pgpass) instead"
            )
        return url

    @model_validator(mode="after")
    def _known_keys(self) -> TuneParams:
        space = self.search_space.get(self.stage)
        if not space:
            raise ValueError(f"search_space.{self.stage} is empty: give it at least one key")
        extras = _pipeline_extra_keys(space)
        if extras:
            raise ValueError(
                f"search_space.{self.stage} has keys {extras}: trials train without outlier "
                "exposure or training photos (they compare recipes by accuracy on the training "
                "split), so there is nothing to tune there; leave them out"
            )
        known = recipe_keys(TransferParams if self.stage == "transfer" else TrainingParams)
        if self.stage == "pretrain":  # transfer keeps the pretrained network's architecture
            known |= MODEL_KEYS
        unknown = sorted(set(space) - known)
        if unknown:
            raise ValueError(
                f"search_space.{self.stage} has keys {unknown} that are not in the "
                f"{self.stage} recipe; valid keys: {sorted(known)}"
            )
        return self

    @property
    def two_objectives(self) -> bool:
        return self.objective == "accuracy_and_seconds"

    def name_for(self, preset: str) -> str:
        """tune.study_name, else "<stage>-<preset>", with "-seconds" for two objectives."""
        suffix = "-seconds" if self.two_objectives else ""
        return self.study_name or f"{self.stage}-{preset}{suffix}"


class LabelEfficiencyParams(_Strict):
    labels_per_class: list[PositiveInt | Literal["all"]] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    min_epoch_images: PositiveInt = 2560
    # name -> changes to the preset's transfer recipe (dotted keys allowed); each is one arm
    # of the study beside the scratch arm. A conf environment adds arms to the shipped ones
    # (parameters merge softly); null leaves one out.
    transfer_recipes: dict[str, dict | None] = Field(min_length=1)

    @field_validator("labels_per_class", "seeds")
    @classmethod
    def _no_repeats(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"{values} lists a value twice")
        return values

    @field_validator("transfer_recipes")
    @classmethod
    def _not_scratch(cls, recipes: dict) -> dict:
        if "scratch" in recipes:
            raise ValueError("'scratch' names the from-scratch arm; give the recipe another name")
        kept = {name: changes for name, changes in recipes.items() if changes is not None}
        extras = [
            f"{name}.{key}"
            for name, changes in kept.items()
            for key in _pipeline_extra_keys(changes)
        ]
        if extras:
            raise ValueError(
                f"{extras}: the study's arms train without outlier exposure or training photos "
                "(it measures accuracy by labels); leave these keys out"
            )
        if not kept:
            raise ValueError("every transfer recipe is left out (null): keep at least one")
        return kept

    def sizes(self) -> list[int | None]:
        """Labels per class, smallest first; None (all of them) last."""
        numbers = sorted(size for size in self.labels_per_class if size != "all")
        return numbers + ([None] if "all" in self.labels_per_class else [])


# Search-space keys of the model section, which a pretraining study may tune too.
MODEL_KEYS = {f"model.{name}" for name in ModelParams.model_fields}


# What the training pipelines make for a recipe besides its stage's data (outlier pictures,
# training photos): the tuning and label-efficiency studies train without them.
PIPELINE_EXTRAS = ("outlier_exposure", "training_photos")


def without_pipeline_extras(recipe: dict) -> dict:
    """A recipe as the studies train it: no outlier exposure, no training photos."""
    return {**recipe, **dict.fromkeys(PIPELINE_EXTRAS)}


def _pipeline_extra_keys(keys) -> list[str]:
    """The keys (dotted or not) of `PIPELINE_EXTRAS` among `keys`, sorted: the studies train
    without them, so they refuse them."""
    return sorted(key for key in keys if key.split(".")[0] in PIPELINE_EXTRAS)


def split_model_values(values: dict) -> tuple[dict, dict]:
    """A trial's values as (model section, training recipe): `model.architecture` goes to
    the first, every other key to the second."""
    model = {key.partition(".")[2]: v for key, v in values.items() if key in MODEL_KEYS}
    recipe = {key: v for key, v in values.items() if key not in MODEL_KEYS}
    return model, recipe


def recipe_keys(schema: type[BaseModel]) -> set[str]:
    """Every key of a training recipe, dotted for a section's own keys (the augmentation's,
    the outlier exposure's)."""
    keys = set()
    for name, field in schema.model_fields.items():
        nested = [
            arg
            for arg in getattr(field.annotation, "__args__", ())
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if nested:
            keys |= {f"{name}.{sub}" for sub in nested[0].model_fields}
        else:
            keys.add(name)
    return keys


def with_values(recipe: dict, values: dict) -> dict:
    """A copy of `recipe` with dotted keys set (`augmentation.crop_padding`), creating the
    augmentation section where the recipe has none."""
    updated = {**recipe}
    for key, value in values.items():
        section, _, sub = key.partition(".")
        if sub:
            updated[section] = {**(updated.get(section) or {}), sub: value}
        else:
            updated[section] = value
    return updated


def value_at(sections: dict, key: str):
    """What `with_values` would set: the value of a dotted key (`augmentation.crop_padding`,
    `model.architecture`) in `sections`, None where there is no such section."""
    section, _, sub = key.partition(".")
    return (sections.get(section) or {}).get(sub) if sub else sections.get(section)


class ProjectParams(_Strict):
    preset: str
    presets: dict[str, dict]
    split: SplitParams
    model: ModelParams
    pretrain: TrainingParams
    transfer: TransferParams
    catalogue: TransferParams
    evaluation: EvaluationParams
    runtime: RuntimeParams
    registry: RegistryParams
    tune: TuneParams
    label_efficiency: LabelEfficiencyParams
    # Only given on the command line (`--params pretrained_model_uri=models:/...`): the
    # catalog then loads the pretrained model from the MLflow registry, not data/06_models.
    pretrained_model_uri: str | None = None
    # Only given on the command line: the folder `kedro run --pipeline predict` classifies.
    predict_images: str | None = None
    # Only given on the command line: the registered model whose champion classifies them.
    predict_model: str | None = None

    @model_validator(mode="after")
    def _search_space_fits_the_recipe(self) -> ProjectParams:
        """Each edge of the tuning ranges, set in this run's recipe of the tuned stage, must
        make a valid recipe: a range that reaches, say, label_smoothing 1.5 is an error
        before the study starts, not a failed trial in the middle of it."""
        stage = self.tune.stage
        recipe = getattr(self, stage)
        schema = type(recipe)
        problems = []
        for key, dimension in self.tune.search_space[stage].items():
            for value in dimension.extremes():
                try:
                    if key in MODEL_KEYS:
                        model_values, _ = split_model_values({key: value})
                        ModelParams.model_validate({**self.model.model_dump(), **model_values})
                    else:
                        schema.model_validate(with_values(recipe.model_dump(), {key: value}))
                except ValidationError as error:
                    reason = "; ".join(issue["msg"] for issue in error.errors())
                    problems.append(f"{key}={value!r} ({reason})")
        if problems:
            raise ValueError(
                f"tune.search_space.{stage} reaches values the {stage} recipe refuses: "
                + ", ".join(problems)
            )
        return self

    @model_validator(mode="after")
    def _label_efficiency_recipes_are_valid(self) -> ProjectParams:
        problems = []
        for name, changes in self.label_efficiency.transfer_recipes.items():
            try:
                TransferParams.model_validate(with_values(self.transfer.model_dump(), changes))
            except ValidationError as error:
                problems += [
                    f"{name}.{'.'.join(str(p) for p in issue['loc'])}: {issue['msg']}"
                    for issue in error.errors()
                ]
        if problems:
            raise ValueError(
                "label_efficiency.transfer_recipes make invalid transfer recipes: "
                + "; ".join(problems)
            )
        return self


def validate_parameters(params: dict) -> ProjectParams:
    try:
        return ProjectParams.model_validate(params)
    except ValidationError as error:
        raise ParameterError([_problem(issue) for issue in error.errors()]) from None


def _problem(issue: dict) -> str:
    """One schema problem as `where: what (got value)`; a whole section is not quoted back."""
    where = ".".join(str(part) for part in issue["loc"]) or "parameters"
    if issue["type"] == "missing":
        return f"{where}: missing"
    message = issue["msg"].removeprefix("Value error, ")
    if isinstance(issue["input"], dict | list) and len(repr(issue["input"])) > 80:
        return f"{where}: {message}"
    return f"{where}: {message} (got {issue['input']!r})"
