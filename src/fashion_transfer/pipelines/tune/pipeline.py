from kedro.pipeline import Pipeline, node

from .nodes import plot_study, summarise_study, tune_recipe


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                tune_recipe,
                inputs=[
                    "pretrain_model",
                    "pretrain_data",
                    "transfer_data",
                    "params:tune",
                    "params:preset",
                    "params:model",
                    "params:pretrain",
                    "params:transfer",
                    "params:runtime",
                ],
                outputs="tuning_study",
                name="tune_recipe",
            ),
            node(
                summarise_study,
                inputs=["tuning_study", "params:pretrain", "params:transfer", "params:tune"],
                outputs=[
                    "tuning_trials",
                    "tuning_pareto_front",
                    "tuning_best_params",
                    "tuning_metrics",
                ],
                name="summarise_study",
            ),
            node(plot_study, inputs="tuning_study", outputs="tuning_plots", name="plot_study"),
        ],
        tags="tune",
    )
