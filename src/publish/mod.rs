//! publish: puts a run's results where a team already looks, beyond the report on standard
//! output. Today: GitHub Actions (job summary, step outputs, annotations, the JSON report as a
//! file). Publishing never changes what a run did or its exit status.

pub mod comment;
pub mod github;
pub mod gitlab;
