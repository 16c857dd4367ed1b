"""Pure mapping functions between the canonical model and the message formats: no IO, no clock."""
