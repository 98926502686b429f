// The `surreal` binary: everything lives in the surrealdb-server library.
#![recursion_limit = "256"]

fn main() -> std::process::ExitCode {
	surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
