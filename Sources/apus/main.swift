import ApusCLI

// Keep the entry point tiny: everything testable lives in ApusCLI.
Apus.runMain()
