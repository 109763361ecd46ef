"""Model search: the search space, model families and the engines that explore them."""
