from kedro.pipeline import Pipeline, node

from .nodes import compare_arms, plot, summarise


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                compare_arms,
                inputs=[
                    "pretrain_model",
                    "transfer_data",
                    "params:label_efficiency",
                    "params:transfer",
                    "params:runtime",
                ],
                outputs="label_efficiency_table",
                name="compare_arms",
            ),
            node(
                summarise,
                inputs="label_efficiency_table",
                outputs=[
                    "label_efficiency_summary",
                    "label_efficiency_findings",
                    "label_efficiency_metrics",
                ],
                name="summarise_label_efficiency",
            ),
            node(
                plot,
                inputs=["label_efficiency_summary", "params:split"],
                outputs="label_efficiency_plot",
                name="plot_label_efficiency",
            ),
        ],
        tags="label_efficiency",
    )
