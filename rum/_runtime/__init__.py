"""The runtime every step runs in: the run context, seeding, the optimisation loop,
predictions and accuracies, the retain guard and progress bars.

Nothing here knows about unlearners, plans or profiles; it imports only rum's foundation
(exceptions, validation, records, data adapters).
"""
