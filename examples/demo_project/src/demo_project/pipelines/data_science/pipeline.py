"""
This is a boilerplate pipeline 'data_science'
generated using Kedro 0.19.15
"""

from kedro.pipeline import Pipeline, node, pipeline

import demo_project.pipelines.data_science.nodes
from demo_project.pipelines.data_science.nodes import evaluate, split_data, train


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                split_data,
                inputs=["model_input_table", "params:data_science"],
                outputs=["train_rows", "test_rows"],
                name="split_data_node",
            ),
            node(
                train,
                inputs=["train_rows", "params:model_options", "params:data_science.target"],
                outputs="model",
                name="train_node",
            ),
            node(evaluate, inputs=["model", "test_rows"], outputs="metrics", name="evaluate_node"),
            node(
                demo_project.pipelines.data_science.nodes.load_schema,
                inputs=None,
                outputs="model_schema",
                name="load_schema_node",
            ),
        ]
    )
