"""What makes a decision provable: the hash-linked chains, their signed checkpoints and the receipts."""
