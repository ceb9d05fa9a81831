"""One training loop for every stage, on in-memory tensors, keeping the best validation epoch."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from fashion_transfer.augmentation import augment
from fashion_transfer.errors import ParameterError, TrainingDivergedError
from fashion_transfer.params import TrainingParams
from fashion_transfer.progress import training_bar
from fashion_transfer.served_model.contract import unit_scale

logger = logging.getLogger(__name__)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) images to float (N, 1, 28, 28) in [0, 1], the model's input."""
    return torch.from_numpy(unit_scale(images)).unsqueeze(1)


def as_input(array) -> torch.Tensor:
    """A stage's uint8 images as model input; tensors (cached features) pass through."""
    return array if isinstance(array, torch.Tensor) else images_to_tensor(array)


def resolve_device(device: str) -> torch.device:
    """`auto` is a CUDA GPU where there is one, else Apple's GPU (`mps`), else the CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    return torch.device(device)


def inference_batch_size(device: torch.device) -> int:
    """Images per forward pass outside training: 128 on the CPU, where a batch whose
    activations stay in the cache ran 1.6 (float32) and 2.1 (bfloat16) times as fast as one of
    2048 (benchmarks/inference_batch.py); 2048 on a GPU."""
    return 128 if device.type == "cpu" else 2048


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is bfloat16 where the hardware computes it natively (CPUs with AVX512-BF16 or
    AMX, GPUs that support it) and float32 elsewhere: CPUs without those instructions emulate
    bfloat16 about ten times slower than float32."""
    if precision != "auto":
        return precision
    if device.type == "mps":  # bfloat16 autocast on Apple GPUs needs a recent macOS
        return "float32"
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bfloat16" if native else "float32"


def autocast(device: torch.device, precision: str):
    """bfloat16 autocast (matrix products and convolutions in bfloat16, reductions and the
    weights in float32), or nothing for float32; `precision` is already resolved."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bfloat16")


# Devices where Adam and AdamW step with PyTorch's fused kernel (one kernel for all the
# weights instead of a few per tensor): on a GPU the step is launch-bound without it (it was
# 59% of an H200's time in a pretraining epoch). On the CPU the default step is kept: the
# fused one was not faster for the `bn2` network here (docs/benchmarks.md).
FUSED_OPTIMIZER_DEVICES = frozenset({"cuda"})


def make_optimizer(params, config: TrainingParams) -> torch.optim.Optimizer:
    """The recipe's optimizer for `params` (tensors already on the training device), with
    the fused step where that device has one that pays."""
    params = list(params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.learning_rate,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
    optimizer_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[config.optimizer]
    fused = {"fused": True} if _fused_fits(params) else {}
    return optimizer_class(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, **fused
    )


def _fused_fits(params: list) -> bool:
    """All the weights on one device where the fused step pays, in a floating-point type."""
    devices = {p.device for p in params}
    return (
        len(devices) == 1
        and next(iter(devices)).type in FUSED_OPTIMIZER_DEVICES
        and all(p.is_floating_point() for p in params)
    )


def prepare_device(device: torch.device) -> None:
    """Once per run, before the first stage. On a CUDA GPU: cuDNN searches for the fastest
    convolution algorithms for each input shape it meets first (kept for the whole process,
    so a shape met again in a later stage costs nothing more), and the CUDA context, cuBLAS
    and cuDNN are set up now, in the run's start-up, not inside the first stage's first
    epoch. Nothing to do on the CPU or Apple's GPU."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.cuda.init()
    _warm_libraries(device)


def _warm_libraries(device: torch.device) -> None:
    """A small convolution and matrix product on the device: cuDNN's and cuBLAS's handles."""
    with torch.no_grad():
        images = torch.zeros(1, 1, 8, 8, device=device)
        nn.functional.conv2d(images, torch.zeros(1, 1, 3, 3, device=device))
        images.flatten(1) @ torch.zeros(64, 1, device=device)
    torch.cuda.synchronize(device)


def make_scheduler(optimizer, config: TrainingParams, steps: int):
    """A per-batch learning-rate schedule over `steps` batches, or None for a constant rate."""
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=steps
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    return None


EpochCallback = Callable[[dict], None]


def fit(
    model: nn.Module,
    stage_data: dict,
    config: TrainingParams,
    device: str = "auto",
    name: str = "model",
    first_epoch: int = 1,
    accuracy_to_beat: float = -1.0,
    precision: str = "auto",
    on_epoch_end: EpochCallback | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train `model` on a stage's train split for `config.epochs` epochs and return it with
    the weights of its best validation-accuracy epoch (or unchanged, if no epoch beats
    `accuracy_to_beat`), and the per-epoch history, numbered from `first_epoch`. The images
    may also be tensors already computed by frozen layers in front of `model`. With
    `config.outlier_exposure`, `stage_data["outlier_images"]` holds the pictures of none of
    the classes that each batch brings (in the same form as the training images).
    `on_epoch_end` sees each epoch's history row; it may stop training by raising (tuning
    prunes hopeless trials that way)."""
    torch.manual_seed(config.seed)
    target = resolve_device(device)
    # The shuffles and the augmentation draw on the training device: no copy from the host
    # each step on a GPU (on the CPU the numbers are the same as a default generator's).
    generator = torch.Generator(device=target).manual_seed(config.seed)
    precision = resolve_precision(precision, target)
    # Channels-last convolutions run about 1.5 times faster with oneDNN on the CPU.
    model.to(target, memory_format=torch.channels_last)
    x_train = as_input(stage_data["train_images"]).to(target)
    y_train = torch.from_numpy(stage_data["train_labels"]).long().to(target)
    x_val = as_input(stage_data["val_images"]).to(target)
    y_val = torch.from_numpy(stage_data["val_labels"]).long().to(target)
    x_outliers = None
    if config.outlier_exposure:
        if len(stage_data.get("outlier_images", ())) == 0:
            raise ParameterError(
                [
                    f"{name}: outlier_exposure is set but the stage has no outlier pictures to "
                    "train with; the training pipelines make them (outlier_sets.make_outliers), "
                    "the tuning and label-efficiency studies train without them"
                ]
            )
        x_outliers = as_input(stage_data["outlier_images"]).to(target)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], config)
    epoch_size = max(len(x_train), config.min_epoch_images or 0)
    batches_per_epoch = -(-epoch_size // config.batch_size)
    scheduler = make_scheduler(optimizer, config, config.epochs * batches_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    history: list[dict] = []
    best_accuracy, best_state = accuracy_to_beat, copy.deepcopy(model.state_dict())
    with training_bar(name, config.epochs, batches_per_epoch) as bar:
        for phase_epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            record = _train_one_epoch(
                model, x_train, y_train, config, epoch_size, optimizer, scheduler, loss_fn,
                generator, target, precision, bar, x_outliers,
            )  # fmt: skip
            val_loss, val_accuracy = evaluate(model, x_val, y_val, precision)
            record = {"epoch": first_epoch + phase_epoch - 1, **record}
            record |= {
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "seconds": time.perf_counter() - started,
            }
            if not math.isfinite(record["train_objective"]):
                raise TrainingDivergedError(
                    f"{name}: the training loss became {record['train_objective']} in epoch "
                    f"{phase_epoch}, so the weights are no longer numbers. Lower the learning "
                    f"rate (now {config.learning_rate:g}) and run again."
                )
            history.append(record)
            bar.epoch_done(phase_epoch, config.epochs, val_accuracy)
            # Each phase counts its own epochs (the history numbers them in one sequence).
            logger.info(
                "%s epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.1f s",
                name,
                phase_epoch,
                config.epochs,
                record["train_loss"],
                record["train_accuracy"],
                val_loss,
                val_accuracy,
                record["seconds"],
            )
            if val_accuracy > best_accuracy:
                best_accuracy, best_state = val_accuracy, copy.deepcopy(model.state_dict())
            if on_epoch_end:
                on_epoch_end(record)
    model.load_state_dict(best_state)
    return model.to("cpu", memory_format=torch.contiguous_format), history


def _train_one_epoch(
    model, x_train, y_train, config, epoch_size, optimizer, scheduler, loss_fn, generator,
    target, precision, bar, x_outliers=None,
) -> dict:  # fmt: skip
    """One pass over an epoch's batches. Besides the objective (with label smoothing and
    outlier exposure) it measures the plain cross-entropy of the training images, which
    compares with the validation loss. With `x_outliers`, each batch brings
    `outlier_exposure.share` times as many of them, drawn at random, through the same
    augmentation and forward pass."""
    model.train()
    order = epoch_order(len(x_train), epoch_size, generator).to(target)
    objective_sum = torch.zeros((), device=target)
    loss_sum = torch.zeros((), device=target)
    correct = torch.zeros((), device=target, dtype=torch.long)
    for batch in order.split(config.batch_size):
        images, labels = x_train[batch], y_train[batch]
        if x_outliers is not None:
            count = max(1, round(len(batch) * config.outlier_exposure.share))
            drawn = torch.randint(
                len(x_outliers), (count,), generator=generator, device=generator.device
            )
            images = torch.cat([images, x_outliers[drawn]])
        if config.augmentation:
            images = augment(images, config.augmentation, generator)
        with autocast(target, precision):
            logits = model(images)
            if x_outliers is not None:
                logits, outlier_logits = logits[: len(batch)], logits[len(batch) :]
            loss = loss_fn(logits, labels)
            if x_outliers is not None:
                loss = loss + config.outlier_exposure.weight * uniform_cross_entropy(outlier_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler:
            scheduler.step()
        objective_sum += loss.detach() * len(batch)
        loss_sum += nn.functional.cross_entropy(logits.detach().float(), labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        bar.advance()
    return {
        "train_loss": loss_sum.item() / epoch_size,
        "train_objective": objective_sum.item() / epoch_size,
        "train_accuracy": correct.item() / epoch_size,
    }


def uniform_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy of `logits` to the uniform distribution over the classes:
    smallest where every class is equally likely."""
    return -logits.float().log_softmax(1).mean(1).mean()


def epoch_order(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """The order of one epoch's `size` training images out of `count`: a shuffle of all of
    them, followed by further shuffles where an epoch is longer than the split."""
    shuffles = [
        torch.randperm(count, generator=generator, device=generator.device)
        for _ in range(-(-size // count))
    ]
    return torch.cat(shuffles)[:size]


@torch.inference_mode()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str = "float32"
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on tensors already on its device."""
    model.eval()
    loss_sum, correct = 0.0, 0
    size = inference_batch_size(images.device)
    for batch_images, batch_labels in zip(images.split(size), labels.split(size), strict=True):
        with autocast(batch_images.device, precision):
            logits = model(batch_images).float()
        loss_sum += nn.functional.cross_entropy(logits, batch_labels, reduction="sum").item()
        correct += (logits.argmax(1) == batch_labels).sum().item()
    return loss_sum / len(images), correct / len(images)


def encode(
    module: nn.Module, images, device: str = "auto", precision: str = "float32", call=None
) -> torch.Tensor:
    """`module`'s float32 output (on the CPU) for a batch of uint8 images or input tensors;
    `call(module, batch)` instead of `module(batch)` where given (its first output if it
    gives several)."""
    target = resolve_device(device)
    precision = resolve_precision(precision, target)
    # Channels-last convolutions, as in training: about 1.5 times faster on the CPU. The
    # layout changes outside inference mode, which would make the weights inference tensors
    # that training can no longer update.
    module.to(target, memory_format=torch.channels_last).eval()
    outputs = []
    with torch.inference_mode():
        for batch in as_input(images).split(inference_batch_size(target)):
            with autocast(target, precision):
                output = call(module, batch.to(target)) if call else module(batch.to(target))
            outputs.append(output.float().cpu())
    module.to("cpu", memory_format=torch.contiguous_format)
    return torch.cat(outputs)


def embed(model: nn.Module, images, device: str = "auto") -> np.ndarray:
    """The penultimate features (model.embed) of uint8 images, float32 as served."""
    return encode(model, images, device, call=lambda m, batch: m.embed(batch)).numpy()


def logits_and_embeddings(
    model: nn.Module, images, device: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """A model's logits and penultimate features (model.logits_and_embedding) of uint8 images
    from one pass, float32 as served."""
    both = encode(model, images, device, call=_logits_and_embedding)
    return both[:, : model.num_classes].numpy(), both[:, model.num_classes :].numpy()


def _logits_and_embedding(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    return torch.cat(model.logits_and_embedding(batch), dim=1)


def recognise(served: nn.Module, images, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A served classifier's calibrated class probabilities and out-of-distribution scores
    for uint8 images, float32 as served."""
    both = encode(served, images, device, call=_probabilities_and_score).numpy()
    return both[:, :-1], both[:, -1]


def _probabilities_and_score(served: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    logits, score = served.recognise(batch)
    return torch.cat([torch.softmax(logits, dim=1), score[:, None]], dim=1)


def predict_proba(model: nn.Module, images: np.ndarray, device: str = "auto") -> np.ndarray:
    """Class probabilities (N, num_classes) for uint8 (N, 28, 28) images, in float32 as the
    served model computes them."""
    return torch.softmax(encode(model, images, device), dim=1).numpy()
