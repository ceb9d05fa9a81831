"""The CNN: a convolutional feature extractor and a dense head, built from a named
architecture; the ensemble of such networks; and their checkpoints (config + state dict)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from fashion_transfer.fashion_mnist import IMAGE_SIZE
from fashion_transfer.recognition import Recogniser

# Fashion-MNIST training-set pixel statistics (on the 0-1 scale); the model normalises its own
# input, so callers (training, serving) only have to pass images scaled to [0, 1].
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


@dataclass(frozen=True)
class Architecture:
    """3x3 conv blocks (each ends in a 2x2 max-pool), then dense layers, then the classifier."""

    conv_blocks: tuple[tuple[int, ...], ...]
    dense: tuple[int, ...]
    padding: int  # 0 is Keras' "valid" padding, 1 keeps the feature map size
    batch_norm: bool
    conv_dropout: float
    dense_dropout: float


ARCHITECTURES: dict[str, Architecture] = {
    # The Keras "mnist_transfer_cnn" network the reference report used:
    # conv32-conv32-pool-dropout, dense128-dropout.
    "seed": Architecture(
        conv_blocks=((32, 32),),
        dense=(128,),
        padding=0,
        batch_norm=False,
        conv_dropout=0.25,
        dense_dropout=0.5,
    ),
    # One conv (with BatchNorm) per block, two blocks: a little cheaper than the seed network
    # on the CPU, and it trains faster.
    "compact": Architecture(
        conv_blocks=((32,), (64,)),
        dense=(128,),
        padding=1,
        batch_norm=True,
        conv_dropout=0.1,
        dense_dropout=0.3,
    ),
    # Two VGG-style blocks with BatchNorm: more capacity, about 2.5 times the seed's work.
    "bn2": Architecture(
        conv_blocks=((32, 32), (64, 64)),
        dense=(128,),
        padding=1,
        batch_norm=True,
        conv_dropout=0.1,
        dense_dropout=0.3,
    ),
    # bn2 at half the width: about 2.4 times faster to train on a 2-core CPU (bfloat16), for
    # the training-time study (docs/experiments.md).
    "bn2_narrow": Architecture(
        conv_blocks=((16, 16), (32, 32)),
        dense=(128,),
        padding=1,
        batch_norm=True,
        conv_dropout=0.1,
        dense_dropout=0.3,
    ),
    # Three VGG-style blocks, wider: the most capacity, about 1.2 times the work of bn2.
    "bn3": Architecture(
        conv_blocks=((32, 32), (64, 64), (128, 128)),
        dense=(256,),
        padding=1,
        batch_norm=True,
        conv_dropout=0.1,
        dense_dropout=0.3,
    ),
}


def standardise(images: torch.Tensor) -> torch.Tensor:
    return (images - PIXEL_MEAN) / PIXEL_STD


class FashionCNN(nn.Module):
    """`features` (frozen during transfer) maps a (N, 1, 28, 28) batch in [0, 1] to a flat vector;
    `head` maps that vector to class logits."""

    def __init__(self, architecture: str, num_classes: int, mirror_average: bool = False):
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}."
            )
        self.architecture = architecture
        self.num_classes = num_classes
        # In eval mode, average the logits of each image and its mirror image: clothes look
        # alike mirrored, so the two views' errors partly cancel (test-time augmentation).
        self.mirror_average = mirror_average
        self.features = _build_features(ARCHITECTURES[architecture])
        with torch.no_grad():
            self.feature_size = self.features(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE)).shape[1]
        self.head = _build_head(ARCHITECTURES[architecture], self.feature_size, num_classes)
        self.frozen_blocks: list[nn.Module] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(standardise(images)))
        if self.mirror_average and not self.training:
            logits = (logits + self.head(self.features(standardise(images.flip(-1))))) / 2
        return logits

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's features: the last convolutional block's output averaged over its
        positions (one value per channel), the mean over the image and its mirror image where
        the model averages the two: what the out-of-distribution score measures
        (recognition.py)."""
        blocks = self.features[:-1]  # the last module is the Flatten
        pooled = blocks(standardise(images)).mean(dim=(2, 3))
        if self.mirror_average and not self.training:
            pooled = (pooled + blocks(standardise(images.flip(-1))).mean(dim=(2, 3))) / 2
        return pooled

    def logits_and_embedding(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` and `embed` together, from one pass through the convolutional blocks."""
        views = [images, images.flip(-1)] if self.mirror_average and not self.training else [images]
        logits, pooled = [], []
        for view in views:
            maps = self.features[:-1](standardise(view))
            logits.append(self.head(self.features[-1](maps)))
            pooled.append(maps.mean(dim=(2, 3)))
        return sum(logits) / len(views), sum(pooled) / len(views)

    @property
    def embedding_size(self) -> int:
        return ARCHITECTURES[self.architecture].conv_blocks[-1][-1]

    def config(self) -> dict:
        """What it takes to rebuild this model around a saved state dict."""
        return {
            "architecture": self.architecture,
            "num_classes": self.num_classes,
            "mirror_average": self.mirror_average,
        }

    def new_head(self, num_classes: int) -> None:
        """Replace the head with freshly initialised dense layers for `num_classes` classes."""
        self.num_classes = num_classes
        self.head = _build_head(ARCHITECTURES[self.architecture], self.feature_size, num_classes)

    def freeze_features(self, trainable_blocks: int = 0) -> None:
        """Stop training the convolutional blocks except the last `trainable_blocks` (all of
        them, if the network has fewer): frozen blocks get no gradients and stay in eval mode,
        so neither dropout nor BatchNorm running statistics change them."""
        blocks = list(self.features)[:-1]  # the last module is the Flatten
        self.frozen_blocks = blocks[: max(len(blocks) - trainable_blocks, 0)]
        self.features.requires_grad_(True)
        for block in self.frozen_blocks:
            block.requires_grad_(False)
        self.train(self.training)

    def split_frozen(self) -> tuple[nn.Module, nn.Module]:
        """The model as two modules that, run one after the other, compute `forward`: the
        frozen blocks (input normalisation included) and the trainable rest. They share this
        model's layers, so training the rest trains the model."""
        blocks = list(self.features)
        frozen = len(self.frozen_blocks)
        return (
            _Standardised(nn.Sequential(*blocks[:frozen])),
            nn.Sequential(*blocks[frozen:], self.head),
        )

    def train(self, mode: bool = True) -> FashionCNN:
        super().train(mode)
        for block in self.frozen_blocks:
            block.eval()
        return self


class ProbabilityEnsemble(nn.Module):
    """Networks trained apart, predicting together: the mean of their class probabilities.
    `forward` returns the logarithm of that mean, so a softmax (as prediction and serving
    apply it) gives the mean back and the argmax is the ensemble's class."""

    def __init__(self, members: list[FashionCNN]):
        super().__init__()
        class_counts = {member.num_classes for member in members}
        if len(members) < 2 or len(class_counts) != 1:
            raise ValueError(
                f"An ensemble needs two or more members with the same classes; got "
                f"{len(members)} with {sorted(class_counts)} classes."
            )
        self.members = nn.ModuleList(members)
        self.num_classes = class_counts.pop()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        log_probabilities = torch.stack([member(images).log_softmax(1) for member in self.members])
        return log_probabilities.logsumexp(0) - math.log(len(self.members))

    def config(self) -> dict:
        return {"members": [member.config() for member in self.members]}

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The members' penultimate features side by side."""
        return torch.cat([member.embed(images) for member in self.members], dim=1)

    def logits_and_embedding(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` and `embed` together, each member's blocks run once."""
        both = [member.logits_and_embedding(images) for member in self.members]
        log_probabilities = torch.stack([logits.log_softmax(1) for logits, _ in both])
        mean = log_probabilities.logsumexp(0) - math.log(len(self.members))
        return mean, torch.cat([features for _, features in both], dim=1)

    @property
    def embedding_size(self) -> int:
        return sum(member.embedding_size for member in self.members)


ImageClassifier = FashionCNN | ProbabilityEnsemble


class ServedClassifier(nn.Module):
    """A classifier as it is served: its logits divided by the temperature fitted on its
    validation split (calibration.py), so that softmax gives probabilities that mean what
    they say; and its out-of-distribution score with the threshold above which a picture is
    not recognised as any of its classes (recognition.py)."""

    def __init__(self, classifier: ImageClassifier, score: str = "msp"):
        super().__init__()
        self.classifier = classifier
        self.num_classes = classifier.num_classes
        self.register_buffer("temperature", torch.tensor(1.0))
        self.recogniser = Recogniser(score, classifier.num_classes, classifier.embedding_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The calibrated logits."""
        return self.classifier(images) / self.temperature

    def recognise(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The calibrated logits and the out-of-distribution score of each image."""
        if self.recogniser.needs_features:
            logits, features = self.classifier.logits_and_embedding(images)
            logits = logits / self.temperature
        else:  # scores of the logits alone need no features
            logits = self(images)
            features = logits[:, :0]
        return logits, self.recogniser(logits, features)

    def config(self) -> dict:
        return {"served": {"classifier": self.classifier.config(), **self.recogniser.config()}}


def build_model(config: dict) -> ImageClassifier | ServedClassifier:
    """The untrained model that a saved `config()` describes, ready for its state dict."""
    if "served" in config:
        served = config["served"]
        return ServedClassifier(build_model(served["classifier"]), served["score"])
    if "members" in config:
        return ProbabilityEnsemble([FashionCNN(**member) for member in config["members"]])
    return FashionCNN(**config)


def to_checkpoint(model: ImageClassifier) -> dict:
    """What torch.save writes for a model: its config and state dict, never a pickled module,
    so that torch.load(..., weights_only=True) reads it back."""
    return {"config": model.config(), "state_dict": model.state_dict()}


def from_checkpoint(checkpoint: dict) -> ImageClassifier:
    """The model, in eval mode, that `to_checkpoint` described."""
    model = build_model(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


class _Standardised(nn.Module):
    def __init__(self, layers: nn.Module):
        super().__init__()
        self.layers = layers

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(standardise(images))


def _build_features(arch: Architecture) -> nn.Sequential:
    """One nn.Sequential per conv block (so blocks can be frozen one by one), then Flatten."""
    blocks: list[nn.Module] = []
    channels = 1
    for block in arch.conv_blocks:
        layers: list[nn.Module] = []
        for out_channels in block:
            layers.append(
                nn.Conv2d(channels, out_channels, 3, padding=arch.padding, bias=not arch.batch_norm)
            )
            if arch.batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        layers.append(nn.MaxPool2d(2))
        if arch.conv_dropout:
            layers.append(nn.Dropout(arch.conv_dropout))
        blocks.append(nn.Sequential(*layers))
    return nn.Sequential(*blocks, nn.Flatten())


def _build_head(arch: Architecture, in_features: int, num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in arch.dense:
        layers += [nn.Linear(in_features, width), nn.ReLU(inplace=True)]
        if arch.dense_dropout:
            layers.append(nn.Dropout(arch.dense_dropout))
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)
