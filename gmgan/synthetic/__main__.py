"""``python -m gmgan.synthetic FOLDER --seeds 0 1 2 3``: train the synthetic task's
teaching models (:func:`gmgan.synthetic.training.main`)."""

from gmgan.synthetic.training import main

if __name__ == "__main__":
    main()
