"""The errors a user can fix, in one place: `kedro run` (cli.py) and the programs the Makefile
starts end each one in its own one-paragraph `Error:` instead of a traceback. Anything else
is a bug and keeps its traceback."""


class ParameterError(ValueError):
    """Parameters that fail the schema; the message lists every problem and where to fix it."""

    def __init__(self, problems: list[str]):
        super().__init__(
            f"Invalid parameters: {'; '.join(problems)}. Fix them in conf/base/parameters_*.yml "
            "or in the --params option of kedro run; nothing was trained."
        )


class InputDataError(ValueError):
    """The data files (or the pictures to classify) are not what the project can read."""


class TrainingDivergedError(ValueError):
    """The training loss stopped being a number: the recipe (learning rate, most often) does
    not train this model."""


class ProjectError(RuntimeError):
    """A command that needs the project's conf/ ran elsewhere."""


class TrackingStoreError(RuntimeError):
    """The tracking store cannot be used as configured; the message says how to fix it."""


class StudyMismatchError(ValueError):
    """A tuning study of that name tunes another stage or preset."""


class StudyStorageError(RuntimeError):
    """The study's database does not answer or refuses the connection."""


# What `kedro run` reports as one paragraph (Kedro's own DatasetError comes beside them).
USER_ERRORS = (
    ParameterError,
    InputDataError,
    TrainingDivergedError,
    TrackingStoreError,
    StudyMismatchError,
    StudyStorageError,
)
