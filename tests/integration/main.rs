mod generate;
mod import;
