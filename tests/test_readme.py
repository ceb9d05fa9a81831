"""Every `kedro run` the README shows names a pipeline that exists and parameters the project
accepts, read as Kedro reads `--params` (comma-separated dotted keys), so that a user who
copies one gets a run, not an `Error: Invalid parameters`. What the runs do is checked end to
end in tests/e2e/."""

import re
import shlex

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from fashion_transfer.errors import ParameterError
from fashion_transfer.params import validate_parameters
from fashion_transfer.pipeline_registry import register_pipelines
from tests.conftest import PROJECT_ROOT, project_parameters

README = (PROJECT_ROOT / "README.md").read_text()
# A README example's values that stand for the user's own.
STANDS_FOR = {"$TUNE_STORAGE": "postgresql+psycopg://mia@10.0.0.5:5432/optuna"}


def _commands() -> list[list[str]]:
    """The arguments of each `kedro run` in the README: in code blocks up to a comment, and
    inline between backticks."""
    found = []
    for line in README.splitlines():
        for match in re.finditer(r"kedro run((?: +--[\w-]+ +[^\s`#|…-][^\s`#|…]*)*)", line):
            found.append(shlex.split(match.group(1)))
    return found


COMMANDS = sorted({tuple(args) for args in _commands()})


def test_the_readme_shows_the_commands_this_test_reads():
    with_params = [args for args in COMMANDS if "--params" in args]
    assert len(with_params) >= 8, COMMANDS
    assert ("--pipeline", "tune") in [args[:2] for args in COMMANDS]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) or "(default)" for a in COMMANDS])
def test_each_kedro_run_in_the_readme_names_a_pipeline_and_parameters_that_exist(args, tmp_path):
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert set(options) <= {"--pipeline", "--params", "--env"}, args
    assert options.get("--pipeline", "__default__") in register_pipelines()
    given = options.get("--params", "")
    for placeholder, value in STANDS_FOR.items():
        given = given.replace(placeholder, value)
    runtime = OmegaConf.to_container(OmegaConf.from_dotlist(given.split(","))) if given else {}
    if runtime.get("preset") == "tuned":  # made from a study; none in a fresh checkout
        runtime["tune"] = {"storage": f"sqlite:///{tmp_path / 'optuna.db'}"}
        # Raised inside the config loader's resolver; the command line shows its message.
        refused = (ParameterError, InterpolationResolutionError)
        with pytest.raises(refused, match="run `kedro run --pipeline tune` first"):
            validate_parameters(project_parameters(**runtime))
        return
    params = validate_parameters(project_parameters(**runtime))
    for key, value in OmegaConf.to_container(OmegaConf.from_dotlist(given.split(","))).items():
        if isinstance(value, dict):  # the section took the value, under its own key
            section = getattr(params, key)
            for name, expected in value.items():
                if not isinstance(expected, dict):
                    assert getattr(section, name) == expected, (key, name)
