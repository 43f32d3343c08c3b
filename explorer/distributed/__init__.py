"""Work spread over more than one process or machine (Ray Data embedding, distributed training).

Nothing here is imported by the rest of the core; each module imports its framework (ray,
torch.distributed) inside the functions that need it.
"""
