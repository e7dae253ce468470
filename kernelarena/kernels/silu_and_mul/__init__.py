"""SiLU-and-multiply (SwiGLU's activation): out = silu(x[:, :d]) * x[:, d:], float32 math."""
