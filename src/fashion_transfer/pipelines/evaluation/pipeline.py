from kedro.pipeline import Pipeline, node

from fashion_transfer.mlflow.metrics import final_metric_values
from fashion_transfer.mlflow.registration import plan_registration

from .nodes import (
    analyse_fit,
    build_ensemble,
    collect_histories,
    compute_test_metrics,
    plot_confusion_matrices,
    plot_learning_curves,
    plot_misclassified,
    predict_test_sets,
    summarise_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_ensemble,
                inputs=[
                    "transfer_model",
                    "baseline_models",
                    "transfer_data",
                    "params:runtime",
                    "params:evaluation",
                ],
                outputs=["ensemble_models", "ensemble_val_accuracy"],
                name="build_ensemble",
            ),
            node(
                predict_test_sets,
                inputs=[
                    "pretrain_model",
                    "transfer_model",
                    "baseline_models",
                    "ensemble_models",
                    "pretrain_data",
                    "transfer_data",
                    "params:runtime",
                ],
                outputs="test_predictions",
                name="predict_test_sets",
            ),
            node(
                collect_histories,
                inputs=["pretrain_history", "transfer_history", "baseline_histories"],
                outputs="training_histories",
                name="collect_histories",
            ),
            node(
                compute_test_metrics,
                inputs="test_predictions",
                outputs=["test_metrics", "classification_reports", "confusion_matrices"],
                name="compute_test_metrics",
            ),
            node(
                analyse_fit,
                inputs=["training_histories", "params:evaluation"],
                outputs="fit_analysis",
                name="analyse_fit",
            ),
            node(
                summarise_metrics,
                inputs=["test_metrics", "fit_analysis", "ensemble_val_accuracy"],
                outputs="metrics",
                name="summarise_metrics",
            ),
            node(
                plot_confusion_matrices,
                inputs="test_predictions",
                outputs="confusion_matrix_plots",
                name="plot_confusion_matrices",
            ),
            node(
                plot_learning_curves,
                inputs=["training_histories", "fit_analysis"],
                outputs="learning_curve_plots",
                name="plot_learning_curves",
            ),
            node(
                plot_misclassified,
                inputs=["test_predictions", "params:evaluation"],
                outputs="misclassified_plots",
                name="plot_misclassified",
            ),
            node(
                final_metric_values,
                inputs="metrics",
                outputs="test_metric_values",
                name="test_metric_values",
            ),
            node(
                plan_registration,
                inputs=["metrics", "params:registry", "params:split"],
                outputs="models_to_register",
                name="plan_registration",
                tags="registry",
            ),
        ],
        tags="evaluation",
    )
