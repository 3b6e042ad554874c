"""The files of a data set: reading RecBole's atomic files (``atomic``), finding a data set's folder
(``location``), fetching a known public data set (``download``) and converting raw MovieLens files (``convert``)."""
