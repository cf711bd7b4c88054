"""vigie: hash → match → analyse → decide → review → report, against AI-generated CSAM.

vigie only ever handles hashes and benign stand-ins in its own tests; every finding it emits is
triage for a human reviewer, never an accusation.
"""

__version__ = "0.1.0"
