"""
This is a boilerplate pipeline 'data_processing'
generated using Kedro 0.19.15
"""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import add_price_per_seat, clean_rows


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                clean_rows,
                inputs=["raw_shuttles", "params:data_processing"],
                outputs="clean_shuttles",
                name="clean_rows_node",
            ),
            node(
                add_price_per_seat,
                inputs="clean_shuttles",
                outputs="model_input_table",
                name="add_price_per_seat_node",
            ),
        ]
    )
