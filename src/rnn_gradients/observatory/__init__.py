"""The gradient observatory: Lightning callbacks that measure gradients while training and write them to TensorBoard (and grad_flow.npz)."""
