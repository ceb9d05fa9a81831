# Two commands do all set-up on a fresh clone:
#   make run    creates .venv if missing, installs the project, obtains the data, runs `kedro run`
#   make test   the same set-up, then the test suite
# Offline, point FASHION_MNIST_SOURCE at a folder holding the four Fashion-MNIST IDX files.
# Then: make mlflow-ui, make serve, make app, make viz, make notebook; make team-up, team-user,
# team-down.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# MODEL=NAME serves another registered model's champion (default: the catalogue model's);
# PORT=N moves viz, mlflow-ui, serve or app off its usual port.
MODEL ?=
PORT ?=

export KEDRO_DISABLE_TELEMETRY := true
export MLFLOW_DISABLE_TELEMETRY := true
# The web app stays on this machine: no Gradio version check, analytics or Hugging Face lookup.
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: install run test viz mlflow-ui serve app notebook team-up team-user team-down

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,viz,notebook,app]"
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kedro run $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

viz: $(STAMP)
	$(BIN)/kedro viz run --host 127.0.0.1 --port $(or $(PORT),4141) --no-browser

# The MLflow UI on the project's store, opened at the experiment's runs (prints the address).
mlflow-ui: $(STAMP)
	$(BIN)/python -m fashion_transfer.programs.mlflow_ui --port $(or $(PORT),5000)

# The catalogue model's champion (MODEL=NAME: another's) on http://127.0.0.1:5001, from the
# project's store or MLFLOW_TRACKING_URI.
serve: $(STAMP)
	$(BIN)/python -m fashion_transfer.programs.serve $(if $(MODEL),--model $(MODEL)) --port $(or $(PORT),5001)

# The web app (page, POST /predict, /health) on the same model and store as `make serve`.
app: $(STAMP)
	$(BIN)/python -m fashion_transfer.programs.app $(if $(MODEL),--model $(MODEL)) --port $(or $(PORT),7860) $(ARGS)

notebook: $(STAMP)
	PATH="$(BIN):$$PATH" $(BIN)/kedro jupyter notebook --ip 127.0.0.1 --no-browser $(ARGS)

# A PostgreSQL cluster and an MLflow server for a team (data in .team/), on 127.0.0.1 or on
# HOST=ADDRESS (then over TLS); `make team-user NAME=alice ROLE=member` makes an account.
team-up: $(STAMP)
	$(BIN)/python -m fashion_transfer.programs.team up $(if $(HOST),--host $(HOST)) $(ARGS)

team-user: $(STAMP)
	$(BIN)/python -m fashion_transfer.programs.team user --name "$(NAME)" --role "$(ROLE)" $(ARGS)

team-down: $(STAMP)
	$(BIN)/python -m fashion_transfer.programs.team down $(ARGS)
