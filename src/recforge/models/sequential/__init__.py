"""Sequential models: each example's history of items -> scores of the next item (RecBole's
``sequential_recommender``)."""
