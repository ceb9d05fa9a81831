"""The schema of the project's parameters, checked once before any node runs."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from fashion_transfer.model import ARCHITECTURES

NUM_CLASSES = 10


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


class AugmentationParams(_Strict):
    crop_padding: int = Field(default=2, ge=0, le=8)
    horizontal_flip: bool = True
    erasing_probability: float = Field(default=0.0, ge=0, le=1)
    erasing_max_side: int = Field(default=10, ge=3, le=28)


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
    # After the frozen-features head training: fine-tune the last convolutional block too,
    # at a lower learning rate, for this many more epochs (0: no fine-tuning).
    fine_tune_epochs: int = Field(default=0, ge=0)
    fine_tune_learning_rate: PositiveFloat = 1e-4


class FitAnalysisParams(_Strict):
    overfit_gap: PositiveFloat
    overfit_val_loss_rise: PositiveFloat
    underfit_train_accuracy: float = Field(gt=0, le=1)
    trend_epochs: int = Field(ge=2)


class EvaluationParams(_Strict):
    fit_analysis: FitAnalysisParams
    misclassified_examples: PositiveInt = 36
    ensemble: bool = True


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
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


class RegistryParams(_Strict):
    register_models: bool
    alias: str = Field(min_length=1)
    model_names: dict[Literal["pretrain", "transfer", "ensemble"], str]


class ProjectParams(_Strict):
    preset: str
    presets: dict[str, dict]
    split: SplitParams
    model: ModelParams
    pretrain: TrainingParams
    transfer: TransferParams
    evaluation: EvaluationParams
    runtime: RuntimeParams
    registry: RegistryParams
    # Only given on the command line (`--params pretrained_model_uri=models:/...`): the
    # catalog then loads the pretrained model from the MLflow registry, not data/06_models.
    pretrained_model_uri: str | None = None
    # Only given on the command line: the folder `kedro run --pipeline predict` classifies.
    predict_images: str | None = None
    # Only given on the command line: the registered model whose champion classifies them.
    predict_model: str | None = None


class ParameterError(ValueError):
    """Parameters that fail the schema; the message lists every problem and where to fix it."""

    def __init__(self, problems: list[str]):
        super().__init__(
            f"Invalid parameters: {'; '.join(problems)}. Fix them in conf/base/parameters_*.yml "
            "or in the --params option of kedro run; nothing was trained."
        )


def validate_parameters(params: dict) -> ProjectParams:
    try:
        return ProjectParams.model_validate(params)
    except ValidationError as error:
        raise ParameterError(
            [
                f"{'.'.join(str(part) for part in issue['loc']) or 'parameters'}: {issue['msg']}"
                f" (got {issue['input']!r})"
                if issue["type"] != "missing"
                else f"{'.'.join(str(part) for part in issue['loc'])}: missing"
                for issue in error.errors()
            ]
        ) from None
