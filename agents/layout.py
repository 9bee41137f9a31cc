"""A run directory's file names, owned here: the trainer writes them, and the
evaluator, archive, sweep, report and exporter read them by these names only;
and the one name a tree of runs reserves, SUPERSEDED_DIR."""

CONFIG_FILE = "config.json"          # the run's identity (RunConfig without where/how-verbose settings)
PROGRESS_FILE = "progress.csv"       # one row per logged iteration
SUMMARY_FILE = "summary.json"        # written last: its presence marks a finished run
EVALUATION_FILE = "evaluation.json"  # dsp_tf.evaluate's result
COMPACT_FILE = "actor_compact.h5"    # the compact actor (masked neurons removed)
DENSE_FILE = "actor_dense.h5"        # the original shape with pruned weights zeroed
META_FILE = "actor_meta.json"        # what turns the actor's output into an action
POLICY_FILE = "policy.h5"            # the policy to hand to others: raw observation in, action (logits) out,
                                     # Keras's own layers only (agents.inference.policy_model)
CHECKPOINT_DIR = "checkpoints"
SUMMARIES_DIR = "summaries"          # TensorBoard
LOCK_FILE = ".lock"
SHRINK_FILE = "shrink.json"          # dsp_tf.shrink's ladder: every ratio tried, its size and validation return
SEARCH_FILE = "search.json"          # dsp_tf.shrink --keep: the size search's settings (its root's identity)

#: The light part of a finished run, kept by dsp_tf.archive (summary last, see there).
ARCHIVED_FILES = (CONFIG_FILE, SUMMARY_FILE, PROGRESS_FILE, META_FILE, COMPACT_FILE, DENSE_FILE, POLICY_FILE,
                  SHRINK_FILE)

#: A directory of this name in a tree of runs (docs/runs/superseded/<sweep>/...) holds runs of superseded settings,
#: kept for the record: the report does not read it (run the report on that directory itself to see them) and
#: dsp_tf.archive does not copy a run back beside it.
SUPERSEDED_DIR = "superseded"
