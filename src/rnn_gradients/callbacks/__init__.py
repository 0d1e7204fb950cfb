"""Lightning callbacks: divergence detection and the gradient observatory."""
