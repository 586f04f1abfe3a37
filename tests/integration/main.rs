mod catalog;
mod simulation;
