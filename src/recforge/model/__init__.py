"""RecBole's module paths (``recbole.model``), as thin aliases of ``recforge.models``: this package exists only so
that code written for RecBole runs with the package name changed; recforge's own code uses ``recforge.models``::

    from recforge.model.general_recommender import BPR
    from recforge.model.abstract_recommender import GeneralRecommender
    from recforge.model.loss import BPRLoss
    from recforge.model.init import xavier_normal_initialization
"""
