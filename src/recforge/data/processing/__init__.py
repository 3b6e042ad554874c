"""Turning atomic files into a processed ``Dataset``, RecBole's way: loading and giving ids (``loading``,
``vocabulary``), row filters (``filters``), completing feature values (``feature_values``) and checking the config
keys that name fields (``field_keys``)."""
