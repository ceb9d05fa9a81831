import numpy as np

from fashion_transfer import outlier_sets


def test_training_outliers_are_seeded_pictures_in_the_models_form():
    originals = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    made = outlier_sets.training_outliers(originals, 12, 8, seed=3)
    assert made.shape == (20, 28, 28) and made.dtype == np.uint8
    np.testing.assert_array_equal(made, outlier_sets.training_outliers(originals, 12, 8, seed=3))
    assert not np.array_equal(made, outlier_sets.training_outliers(originals, 12, 8, seed=4))
    crops = made[:12]
    # The served conversion's form: the item light on a black background, centred.
    border = np.concatenate([crops[:, 0], crops[:, -1], crops[:, :, 0], crops[:, :, -1]], axis=1)
    assert np.median(border) == 0
    assert (crops.reshape(12, -1).max(1) > 100).all()


def test_shuffled_outliers_are_a_training_image_with_its_patches_moved():
    originals = np.arange(28 * 28, dtype=np.int64).reshape(1, 28, 28) % 251
    originals = originals.astype(np.uint8)
    (shuffled,) = outlier_sets.training_outliers(originals, 0, 1, seed=0)
    assert not np.array_equal(shuffled, originals[0])

    def patches(image):
        grid = image.reshape(4, 7, 4, 7).transpose(0, 2, 1, 3).reshape(16, 49)
        return sorted(map(bytes, grid))

    assert patches(shuffled) == patches(originals[0])


def test_no_outliers_asked_for_gives_an_empty_set():
    originals = np.zeros((5, 28, 28), np.uint8)
    assert outlier_sets.training_outliers(originals, 0, 0, seed=0).shape == (0, 28, 28)


def test_edge_maps_are_thin_light_strokes_centred_on_black():
    originals = np.zeros((5, 28, 28), np.uint8)
    strokes = outlier_sets.training_outliers(originals, 0, 0, seed=1, edges=40)
    assert strokes.shape == (40, 28, 28) and strokes.dtype == np.uint8
    # Centred in the 28x28 square with a black margin, as the digits and the served pictures.
    assert strokes[:, 0].max() < 16 and strokes[:, :, -1].max() < 16
    lit = (strokes > 32).reshape(40, -1).mean(1)
    # Strokes: something drawn in each, and far from a filled square (a crop's own pixels).
    assert (lit > 0.02).all() and np.median(lit) < 0.35
    # The other sources come first and are unchanged by asking for edge maps too.
    np.testing.assert_array_equal(
        outlier_sets.training_outliers(originals, 3, 2, seed=1, edges=4)[:5],
        outlier_sets.training_outliers(originals, 3, 2, seed=1),
    )


def test_a_stage_makes_the_outliers_its_recipe_asks_for_from_its_own_images():
    own = np.full((10, 28, 28), 77, np.uint8)
    recipe = {
        "seed": 5,
        "outlier_exposure": {"weight": 0.5, "photo_crops": 3, "shuffled": 4, "edges": 2},
    }
    made = outlier_sets.make_outliers({"train_images": own}, recipe)
    assert made.shape == (9, 28, 28)
    np.testing.assert_array_equal(made, outlier_sets.training_outliers(own, 3, 4, 5, edges=2))
    assert (made[3:7] == 77).all()  # the shuffled ones are the stage's own training images
    without = outlier_sets.make_outliers({"train_images": own}, {"seed": 5})
    assert without.shape == (0, 28, 28)
    assert outlier_sets.with_outliers({"a": 1}, without) == {"a": 1}
    assert outlier_sets.with_outliers({"a": 1}, made)["outlier_images"] is made
