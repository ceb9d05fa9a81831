import pytest
import torch

from fashion_transfer.model import ARCHITECTURES, FashionCNN, ProbabilityEnsemble, build_model


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_maps_images_to_logits(architecture):
    model = FashionCNN(architecture, num_classes=5)
    assert model(torch.rand(4, 1, 28, 28)).shape == (4, 5)


def test_new_head_keeps_features_and_changes_output_size():
    model = FashionCNN("seed", num_classes=5)
    features = {k: v.clone() for k, v in model.features.state_dict().items()}
    model.new_head(3)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    assert model.config() == {"architecture": "seed", "num_classes": 3, "mirror_average": False}
    assert all(torch.equal(features[k], v) for k, v in model.features.state_dict().items())


def test_frozen_features_stay_in_eval_mode():
    model = FashionCNN("seed", num_classes=5)
    model.freeze_features()
    model.train()
    assert model.head.training
    assert not any(m.training for m in model.features[0].modules())
    assert not any(p.requires_grad for p in model.features.parameters())


def test_the_last_block_can_stay_trainable():
    model = FashionCNN("bn2", num_classes=5)
    model.freeze_features(trainable_blocks=1)
    model.train()
    first, last = model.features[0], model.features[1]
    assert not first.training and not any(p.requires_grad for p in first.parameters())
    assert last.training and all(p.requires_grad for p in last.parameters())


def test_unknown_architecture_lists_the_valid_ones():
    valid = r"\['bn2', 'bn2_narrow', 'bn3', 'compact', 'seed'\]"
    with pytest.raises(ValueError, match=f"choose one of {valid}"):
        FashionCNN("vgg", num_classes=5)


def test_mirror_average_predicts_with_both_views_in_eval_mode_only():
    torch.manual_seed(0)
    model = FashionCNN("compact", 5, mirror_average=True)
    plain = FashionCNN(**{**model.config(), "mirror_average": False})
    plain.load_state_dict(model.state_dict())
    images = torch.rand(4, 1, 28, 28)
    model.eval(), plain.eval()
    with torch.no_grad():
        expected = (plain(images) + plain(images.flip(-1))) / 2
        assert torch.allclose(model(images), expected, atol=1e-6)
        assert not torch.allclose(plain(images), expected, atol=1e-4)
        model.train(), plain.train()
        torch.manual_seed(1)
        train_logits = model(images)
        torch.manual_seed(1)
        assert torch.equal(train_logits, plain(images))
    assert model.config()["mirror_average"] is True


def test_ensemble_predicts_the_mean_of_its_members_probabilities():
    torch.manual_seed(0)
    members = [FashionCNN("compact", 5), FashionCNN("seed", 5)]
    ensemble = ProbabilityEnsemble(members).eval()
    images = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        expected = (members[0](images).softmax(1) + members[1](images).softmax(1)) / 2
        assert torch.allclose(ensemble(images).softmax(1), expected, atol=1e-6)
    rebuilt = build_model(ensemble.config())
    rebuilt.load_state_dict(ensemble.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(images), ensemble(images))


def test_ensemble_members_must_share_their_classes():
    with pytest.raises(ValueError, match=r"same classes; got 2 with \[3, 5\] classes"):
        ProbabilityEnsemble([FashionCNN("seed", 5), FashionCNN("seed", 3)])
    with pytest.raises(ValueError, match="two or more members"):
        ProbabilityEnsemble([FashionCNN("seed", 5)])


@pytest.mark.parametrize("mirror_average", [False, True])
def test_logits_and_embedding_in_one_pass_equal_forward_and_embed(mirror_average):
    torch.manual_seed(0)
    members = [FashionCNN("bn2_narrow", 5, mirror_average=mirror_average) for _ in range(2)]
    images = torch.rand(6, 1, 28, 28)
    for model in (members[0].eval(), ProbabilityEnsemble(members).eval()):
        with torch.no_grad():
            logits, features = model.logits_and_embedding(images)
            torch.testing.assert_close(logits, model(images))
            torch.testing.assert_close(features, model.embed(images))
