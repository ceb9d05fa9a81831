"""benchmarks/photo_variations.py's rows: each switches exactly the variations it names."""

import importlib.util
import sys
from pathlib import Path

from fashion_transfer.params import PhotoParams

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # its sibling last_run.py, as when run as a script
PATH = BENCHMARKS / "photo_variations.py"
spec = importlib.util.spec_from_file_location("photo_variations", PATH)
photo_variations = importlib.util.module_from_spec(spec)
spec.loader.exec_module(photo_variations)

# What is not a variation a phone brings: how many photos, their draws, the frame's size.
NOT_VARIATIONS = {"per_class", "seed", "frame_long_side", "frame_aspect"}


def test_every_variation_of_the_renderer_can_be_switched_off():
    # A variation added to PhotoParams without its "off" would be measured as always on.
    assert set(photo_variations.OFF) == set(PhotoParams.model_fields) - NOT_VARIATIONS
    for key, plain in photo_variations.OFF.items():
        assert getattr(PhotoParams(**{key: plain}), key) != getattr(PhotoParams(), key), key


def test_each_row_differs_from_the_evaluated_photos_only_where_it_says():
    evaluated = PhotoParams(per_class=5, seed=3).model_dump()
    rows = photo_variations.renderings(evaluated)
    assert rows["as evaluated"] == evaluated
    assert len(rows) == 2 + 2 * len(photo_variations.OFF)
    for name, settings in rows.items():
        PhotoParams.model_validate(settings)  # every row is a valid rendering
        changed = {key for key in evaluated if settings[key] != evaluated[key]}
        if name == "as evaluated":
            assert not changed
        elif name == "all off":
            assert changed == set(photo_variations.OFF)
        elif name.startswith("without "):
            assert changed == {name.removeprefix("without ")}
        else:
            assert changed == set(photo_variations.OFF) - {name.removesuffix(" alone")}
