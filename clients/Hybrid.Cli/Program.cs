using Hybrid.Cli;

return await HybridCommands.RunAsync(args);
