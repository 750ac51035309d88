@echo off
rem Installs `run.py serve` as a Windows service with NSSM (https://nssm.cc), run as Administrator
rem from the project folder, e.g. C:\torgsoft-satu.  See docs/service.md.
rem Edit the secrets below first (or set them afterwards with "nssm edit TorgsoftSatu").
setlocal
set SERVICE=TorgsoftSatu
set APPDIR=%~dp0..
for %%I in ("%APPDIR%") do set APPDIR=%%~fI
set NSSM=nssm

%NSSM% install %SERVICE% "%APPDIR%\.venv\Scripts\python.exe" "run.py --settings settings.toml serve"
%NSSM% set %SERVICE% AppDirectory "%APPDIR%"
%NSSM% set %SERVICE% DisplayName "Torgsoft - Satu.kz exchange"
%NSSM% set %SERVICE% Description "Catalog feed, photos, stock to Satu.kz; orders and statuses back into Torgsoft"
%NSSM% set %SERVICE% Start SERVICE_DELAYED_AUTO_START
%NSSM% set %SERVICE% AppEnvironmentExtra SATU_TOKEN=change-me TORGSOFT_DB_PASSWORD=change-me PYTHONUTF8=1
rem Stop: Ctrl+C first (the current step finishes, state is saved), wait up to 5 minutes.
%NSSM% set %SERVICE% AppStopMethodConsole 300000
%NSSM% set %SERVICE% AppStopMethodWindow 10000
%NSSM% set %SERVICE% AppStopMethodThreads 10000
%NSSM% set %SERVICE% AppExit Default Restart
%NSSM% set %SERVICE% AppRestartDelay 30000
if not exist "%APPDIR%\var" mkdir "%APPDIR%\var"
%NSSM% set %SERVICE% AppStdout "%APPDIR%\var\service.out.log"
%NSSM% set %SERVICE% AppStderr "%APPDIR%\var\service.err.log"
%NSSM% set %SERVICE% AppRotateFiles 1
%NSSM% set %SERVICE% AppRotateBytes 10485760
%NSSM% start %SERVICE%
%NSSM% status %SERVICE%
endlocal
