"""Models registered before the package was regrouped (tests/fixtures/README.md) still load and
answer as they did, in a process that has the installed package imported already (as
`kedro run --pipeline predict` has) and in a fresh one (as `make serve` starts)."""

import io
import json
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd

from fashion_transfer.pipelines.predict import nodes  # noqa: F401 (the package, imported first)
from tests.conftest import PROJECT_ROOT

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "model-logged-at-e8a0639"
EXPECTED_FILE = FIXTURE.with_name(f"{FIXTURE.name}-expected.json")
EXPECTED = json.loads(EXPECTED_FILE.read_text())
NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _answer_matches(table) -> None:
    for column in ("label", "class_name"):
        assert list(table[column]) == EXPECTED["predictions"][column]
    for name in NAMES:
        np.testing.assert_allclose(table[name], EXPECTED["predictions"][name], atol=1e-6)


def test_an_old_model_loads_and_answers_in_the_project_s_process():
    table = mlflow.pyfunc.load_model(str(FIXTURE)).predict(
        np.array(EXPECTED["images"], np.float32) / 255
    )
    _answer_matches(table)


def test_an_old_model_loads_and_answers_in_a_fresh_process(tmp_path):
    script = (
        "import json, sys, mlflow, numpy as np\n"
        "expected = json.load(open(sys.argv[2]))\n"
        "table = mlflow.pyfunc.load_model(sys.argv[1]).predict("
        "np.array(expected['images'], np.float32) / 255)\n"
        "print(table.to_json(orient='columns'))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script, str(FIXTURE), str(EXPECTED_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    _answer_matches(pd.read_json(io.StringIO(answer.stdout.splitlines()[-1])))
