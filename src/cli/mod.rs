//! The subcommands: each parses nothing (clap did), calls the library and prints what it returns.

pub mod args;
mod lake;
mod run;
mod serve;
mod simulate;
pub mod terminal;

use args::Command;

pub async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            pipeline,
            overrides,
            json,
        } => run::run(pipeline, overrides, json).await,
        Command::Backfill {
            pipeline,
            from,
            to,
            force,
            out,
            skip_bad_files,
            json,
        } => {
            let request = tunelake::backfill::BackfillRequest {
                pipeline,
                from: tunelake::backfill::parse_day("--from", &from)?,
                to: tunelake::backfill::parse_day("--to", &to)?,
                force,
                out,
                skip_bad_files,
            };
            run::backfill(&request, json).await
        }
        Command::Calibrate {
            pipeline,
            as_of,
            json,
        } => run::calibrate(pipeline, as_of, json).await,
        Command::Validate { pipeline } => run::validate(&pipeline),
        Command::Simulate {
            trace,
            supply,
            overrides,
            seed,
            timeout_s,
            json,
        } => simulate::simulate(&trace, &supply, &overrides, seed, timeout_s, json),
        Command::Generate {
            out,
            requests,
            days,
            seed,
            end,
            invalid_share,
        } => {
            let config = tunelake::generate::GenerateConfig {
                requests,
                days,
                seed,
                end: lake::end_date(end.as_deref())?,
                invalid_share,
            };
            lake::generate(&out, &config).await
        }
        Command::Import(flags) => lake::import(flags).await,
        Command::Eval {
            cases,
            out,
            seed,
            json,
        } => {
            let report = tunelake::pipeline::eval(&cases, out.as_deref(), seed).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.markdown());
            }
            Ok(())
        }
        Command::Runs { out } => lake::runs(&out).await,
        Command::Serve(flags) => serve::serve(flags).await,
        Command::Keys {
            command:
                args::KeysCommand::Create {
                    name,
                    apps,
                    requests_per_minute,
                    file,
                },
        } => serve::create_key(&name, apps, requests_per_minute, &file),
    }
}
