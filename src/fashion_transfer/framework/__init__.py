"""Kedro glue: the config loader's settings and resolvers (config.py), the project's hooks
(hooks.py), where the project is (paths.py), the library warnings it drops
(library_warnings.py) and the end of `kedro run` without the interpreter's teardown
(quick_exit.py). Kedro's own entry points (settings.py, pipeline_registry.py, cli.py)
stay at the package's top, where Kedro looks for them."""
