<#
.SYNOPSIS
  install.ps1: register this Windows server with AWS Systems Manager through the activation broker.

.DESCRIPTION
  The Windows twin of install.sh (same steps, options and exit codes); Windows PowerShell 5.1 and
  PowerShell 7, as Administrator:
    & ([scriptblock]::Create((Invoke-RestMethod 'https://BROKER/install.ps1?pool=web'))) -Proxy http://proxy:3128
  In this order: find the SSM Agent, or download AmazonSSMAgentSetup.exe (or take -Package), check
  its Authenticode signature (valid, Amazon's) and install it without an activation; only then ask
  the broker for one pair (each answer reserves a registration, so a failed install costs none);
  register; start the service automatically; print the managed-node id. Re-runs converge.
  CI parses it (tree-sitter-powershell) and checks it against install.sh; it does not run it.
  Verbose output is the common parameter -Verbose. docs/onboarding.md: options and sources.
#>
[CmdletBinding()]
param(
  # Broker base URL (env BROKER_URL; filled in when served). https, or http on loopback.
  [string]$Url = $(if ($env:BROKER_URL) { $env:BROKER_URL } else { '__BROKER_URL__' }),
  # Activation pool, [A-Za-z0-9_-]{1,64} (env BROKER_POOL); default pool if empty.
  [string]$Pool = $(if ($env:BROKER_POOL) { $env:BROKER_POOL } else { '__BROKER_POOL__' }),
  # Region to download the agent from and register in (default: the broker URL's, then the answer's).
  [string]$Region = '',
  # Total seconds to keep retrying a busy or unreachable broker.
  [int]$MaxWait = 300,
  # Proxy for the broker, the download and the agent service (default: $env:HTTPS_PROXY).
  [string]$Proxy = $(if ($env:HTTPS_PROXY) { $env:HTTPS_PROXY } else { '' }),
  # Comma-separated hosts the agent reaches directly (169.254.169.254 always).
  [string]$NoProxy = '',
  # The agent's Ssm.Endpoint (its registration goes there too), e.g. an interface VPC endpoint.
  [string]$SsmEndpoint = '',
  # The agent's Mds.Endpoint (ec2messages).
  [string]$Ec2messagesEndpoint = '',
  # The agent's Mgs.Endpoint (ssmmessages).
  [string]$SsmmessagesEndpoint = '',
  # Register this agent executable; install nothing.
  [string]$AgentPath = '',
  # Install this local AmazonSSMAgentSetup.exe or .msi (Authenticode-checked like the download).
  [string]$Package = '',
  # A copy of the regional agent bucket (https).
  [string]$MirrorUrl = '',
  # Re-register a registered server (the agent is never uninstalled).
  [switch]$Force,
  # Register and start the service automatically at boot, but do not start it now.
  [switch]$NoStart,
  [switch]$Help
)
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# Exit codes (install.sh's numbers):
$EXIT_OK = 0                    # registered (now or before), automatic and running; -Help
$EXIT_FAILURE = 1               # unexpected error
$EXIT_USAGE = 2                 # bad option or value
$EXIT_NOT_ROOT = 3              # must run as Administrator
$EXIT_UNSUPPORTED = 4           # operating system or architecture not supported
$EXIT_BROKER_UNREACHABLE = 10   # broker unreachable, or busy (429/5xx) when -MaxWait ran out
$EXIT_BROKER_REJECTED = 11      # broker refused the request (4xx, e.g. 404 PoolNotFound)
$EXIT_BROKER_BAD_ANSWER = 12    # broker answer unusable (over 64 KB, a field missing or malformed)
$EXIT_INSTALL_FAILED = 20       # agent missing, or its download, signature check or install failed
$EXIT_REGISTRATION_FAILED = 21  # SSM refused the registration, also with a second pair
$EXIT_SERVICE_FAILED = 22       # service not automatic or not running, or no registration file
$MaxAnswerBytes = 65536
if ($Url -like '__BROKER_*__') { $Url = '' }   # an unrendered copy: unset
if ($Pool -like '__BROKER_*__') { $Pool = '' }
$RegFile = Join-Path $env:ProgramData 'Amazon\SSM\InstanceData\registration'
$AgentDir = Join-Path $env:ProgramFiles 'Amazon\SSM'
$AgentExe = if ($AgentPath) { $AgentPath } else { Join-Path $AgentDir 'amazon-ssm-agent.exe' }
$AgentConfig = Join-Path $AgentDir 'amazon-ssm-agent.json'
$ServiceName = 'AmazonSSMAgent'
$Verbose = $PSBoundParameters.ContainsKey('Verbose')
$script:ActCode = ''
function Write-Log([string]$Message) { [Console]::Error.WriteLine("install.ps1: $Message") }
function Stop-Install([int]$Code, [string]$Message) { Write-Log "error: $Message"; exit $Code }
function Get-Safe([string]$Text) { if (-not $Text) { return '' }; $t = $Text -replace '[^\x20-\x7E]', ' '; return $t.Substring(0, [Math]::Min(300, $t.Length)) }
# A tool's output, the code masked: shown with -Verbose or when the tool failed.
function Write-ToolOutput([string]$Text, [bool]$Failed) {
  if (-not $Text) { return }
  if ($script:ActCode) { $Text = $Text.Replace($script:ActCode, '***') }
  if ($Verbose -or $Failed) { foreach ($line in ($Text.TrimEnd() -split "`r?`n")) { [Console]::Error.WriteLine("  | $line") } }
}
if ($Help) { Get-Help -Detailed $PSCommandPath 2>$null; if (-not $PSCommandPath) { Write-Output 'See the parameters at the top of install.ps1.' }; exit $EXIT_OK }
# --- arguments -------------------------------------------------------------------------------
function Test-Url([string]$U, [bool]$NoPath) {
  $shape = if ($NoPath) { '^https?://[\[\]A-Za-z0-9.:-]+/?$' } else { '^https?://[\[\]A-Za-z0-9.:-]+(/[A-Za-z0-9._~%/-]*)?$' }
  return ($U -match $shape) -and ($U -like 'https://*' -or $U -match '^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$)')
}
$RegionPattern = '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
if (-not $Url) { Stop-Install $EXIT_USAGE 'no broker URL: pass -Url, or download this script from the broker (GET /install.ps1)' }
if (-not (Test-Url $Url $false)) { Stop-Install $EXIT_USAGE '-Url must look like https://host[:port][/path] (plain http only on loopback: the answer holds a secret)' }
$Url = $Url.TrimEnd('/')
if ($Pool -and $Pool -notmatch '^[A-Za-z0-9_-]{1,64}$') { Stop-Install $EXIT_USAGE '-Pool must match [A-Za-z0-9_-]{1,64}' }
if (-not $Region -and $Url -match '\.([a-z]{2}(-[a-z]+)+-[0-9]{1,2})\.(vpce\.)?amazonaws\.com(\.cn)?(:[0-9]+)?(/|$)') { $Region = $Matches[1] }
if ($Region -and $Region -cnotmatch $RegionPattern) { Stop-Install $EXIT_USAGE "-Region '$(Get-Safe $Region)' is not a region name" }
if ($MaxWait -lt 0) { Stop-Install $EXIT_USAGE '-MaxWait must be a whole number of seconds' }
if ($Proxy -and $Proxy -notmatch '^https?://[^\s"\\]+$') { Stop-Install $EXIT_USAGE '-Proxy must look like http://host:port' }
if ($NoProxy -notmatch '^[A-Za-z0-9.,:*/_-]*$') { Stop-Install $EXIT_USAGE '-NoProxy must be a comma-separated host list' }
foreach ($e in @(@('-SsmEndpoint', $SsmEndpoint), @('-Ec2messagesEndpoint', $Ec2messagesEndpoint), @('-SsmmessagesEndpoint', $SsmmessagesEndpoint))) {
  if ($e[1] -and -not (Test-Url $e[1] $true)) { Stop-Install $EXIT_USAGE "$($e[0]) must look like https://host[:port]" }
}
if ($AgentPath -and $Package) { Stop-Install $EXIT_USAGE '-AgentPath and -Package exclude each other' }
if ($Package -and -not ((Test-Path -LiteralPath $Package -PathType Leaf) -and $Package -match '\.(exe|msi)$')) { Stop-Install $EXIT_USAGE "-Package '$Package' is not a readable AmazonSSMAgentSetup.exe or .msi" }
if ($MirrorUrl -and -not (Test-Url $MirrorUrl $false)) { Stop-Install $EXIT_USAGE '-MirrorUrl must look like https://host[:port][/path]' }
$MirrorUrl = $MirrorUrl.TrimEnd('/')
if ([Environment]::OSVersion.Platform -ne 'Win32NT') { Stop-Install $EXIT_UNSUPPORTED 'install.ps1 is for Windows; use install.sh on Linux' }
$Machine = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
if ($Machine -ne 'AMD64') { Stop-Install $EXIT_UNSUPPORTED "unsupported architecture '$Machine' (supported: AMD64)" }

function Get-RegisteredId {
  if (-not (Test-Path -LiteralPath $RegFile)) { return $null }
  try { $id = (Get-Content -LiteralPath $RegFile -Raw | ConvertFrom-Json).ManagedInstanceID } catch { return $null }
  if ($id -cmatch '^mi-[0-9a-f]{17}$') { return $id } else { return $null }
}
function Test-AgentInstalled { return (Test-Path -LiteralPath $AgentExe -PathType Leaf) }
function Get-AgentService { return Get-Service -Name $ServiceName -ErrorAction SilentlyContinue }
# --- the broker ------------------------------------------------------------------------------
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
# One GET of the text answer (docs/http-api.md); at most $MaxAnswerBytes are read.
function Invoke-Broker([string]$Uri) {
  $request = [System.Net.HttpWebRequest]::Create($Uri)
  $request.Accept = 'text/plain'; $request.AllowAutoRedirect = $false; $request.Timeout = 30000; $request.ReadWriteTimeout = 30000
  $request.UserAgent = 'ssm-activation-broker-install/2 (windows)'
  if ($Proxy) { $request.Proxy = New-Object System.Net.WebProxy($Proxy, $true) }
  try { $response = $request.GetResponse() } catch {
    $e = $_.Exception
    while ($e -and -not ($e -is [System.Net.WebException])) { $e = $e.InnerException }
    if (-not ($e -and $e.Response)) { return @{ Status = 0; Body = ''; RetryAfter = 0; Error = (Get-Safe $_.Exception.Message) } }
    $response = $e.Response
  }
  try {
    $buffer = New-Object byte[] ($MaxAnswerBytes + 1); $total = 0; $stream = $response.GetResponseStream()
    while ($response.ContentLength -le $MaxAnswerBytes -and $total -lt $buffer.Length) { $n = $stream.Read($buffer, $total, $buffer.Length - $total); if ($n -le 0) { break }; $total += $n }
    if ($response.ContentLength -gt $MaxAnswerBytes -or $total -gt $MaxAnswerBytes) { Stop-Install $EXIT_BROKER_BAD_ANSWER "broker answer from GET $Uri is larger than $MaxAnswerBytes bytes: refused unread" }
    $retryAfter = 0; [void][int]::TryParse("$($response.Headers['Retry-After'])", [ref]$retryAfter)
    return @{ Status = [int]$response.StatusCode; Body = [Text.Encoding]::UTF8.GetString($buffer, 0, $total); RetryAfter = $retryAfter; Error = '' }
  } finally { $response.Close() }
}

# One pair: KEY=value lines, each value checked for the shape SSM gives it. Retries 429/5xx and an
# unreachable broker for -MaxWait seconds (Retry-After, else 1, 2, 4 ... 30 s), like install.sh.
# $Refused: the activation SSM refused, for the one second request (?refused=).
function Get-Activation([string]$Refused) {
  $uri = "$Url/$(if ($Pool) { "activations/$Pool" })$(if ($Refused) { "?refused=$Refused" })"
  $started = Get-Date; $delay = 1
  while ($true) {
    $answer = Invoke-Broker $uri
    $status = $answer.Status
    if ($status -eq 200) { break }
    $code = if ($answer.Body -match '"code":"([A-Za-z]{1,64})"') { ", $($Matches[1])" } else { '' }
    if ($status -ge 400 -and $status -lt 500 -and $status -ne 429) { Stop-Install $EXIT_BROKER_REJECTED "broker refused the request GET $uri (HTTP $status$code)" }
    if ($status -ne 0 -and $status -lt 500 -and $status -ne 429) { Stop-Install $EXIT_BROKER_BAD_ANSWER "unexpected answer from the broker GET $uri (HTTP $status)" }
    $reason = if ($status -eq 0) { "cannot reach the broker at ${uri}: $($answer.Error)" } else { "HTTP $status$code" }
    $wait = if ($answer.RetryAfter -gt 0) { $answer.RetryAfter } else { $delay }
    $delay = [Math]::Min(30, $delay * 2)
    $elapsed = [int]((Get-Date) - $started).TotalSeconds
    if ($elapsed + $wait -gt $MaxWait) { Stop-Install $EXIT_BROKER_UNREACHABLE "broker unavailable ($reason); gave up after ${elapsed}s (-MaxWait $MaxWait)" }
    Write-Log "broker unavailable ($reason); retrying in ${wait}s"
    Start-Sleep -Seconds $wait
  }
  $fields = @{}
  foreach ($line in ($answer.Body -split "`n")) { if ($line -match '^([A-Z_]+)=(.*)$') { $fields[$Matches[1]] = $Matches[2] } }
  $answer = $null
  if ("$($fields['ACTIVATION_ID'])" -cnotmatch '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid ACTIVATION_ID' }
  if ("$($fields['ACTIVATION_CODE'])" -cnotmatch '^[A-Za-z0-9+/=]{20,250}$') { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid ACTIVATION_CODE' }
  $r = if ($Region) { $Region } else { "$($fields['REGION'])" }
  if ($r -cnotmatch $RegionPattern) { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid REGION (pass -Region to override)' }
  $script:ActCode = $fields['ACTIVATION_CODE']
  Write-Log "got activation $($fields['ACTIVATION_ID']) (region $r$(if ($Pool) { ", pool $Pool" }))"
  return @{ Id = $fields['ACTIVATION_ID']; Code = $fields['ACTIVATION_CODE']; Region = $r }
}

# --- agent configuration, written before the agent registers ---------------------------------
$script:ConfigChanged = $false
function Set-AgentProxy {
  if (-not $Proxy) { return }
  $value = @("http_proxy=$Proxy", "https_proxy=$Proxy", "no_proxy=169.254.169.254$(if ($NoProxy) { ",$NoProxy" })")
  $key = "HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName"
  $current = Get-ItemProperty -Path $key -Name Environment -ErrorAction SilentlyContinue
  if ($current -and (($current.Environment -join "`n") -eq ($value -join "`n"))) { return }
  Set-ItemProperty -Path $key -Name Environment -Type MultiString -Value $value
  $script:ConfigChanged = $true
  Write-Log "agent proxy set to $($Proxy -replace '//[^@/]*@', '//***@') in the $ServiceName service environment"
}
# Ssm/Mds/Mgs.Endpoint merged into the agent's configuration (created if missing).
function Set-AgentEndpoints {
  if (-not ($SsmEndpoint -or $Ec2messagesEndpoint -or $SsmmessagesEndpoint)) { return }
  $config = New-Object PSObject; $old = ''
  if (Test-Path -LiteralPath $AgentConfig) {
    $old = Get-Content -LiteralPath $AgentConfig -Raw
    try { $config = $old | ConvertFrom-Json } catch { Stop-Install $EXIT_INSTALL_FAILED "$AgentConfig is not valid JSON: fix it or remove it, then run again" }
  }
  foreach ($pair in @(@('Ssm', $SsmEndpoint), @('Mds', $Ec2messagesEndpoint), @('Mgs', $SsmmessagesEndpoint))) {
    if (-not $pair[1]) { continue }
    if (-not $config.PSObject.Properties[$pair[0]]) { $config | Add-Member -NotePropertyName $pair[0] -NotePropertyValue (New-Object PSObject) }
    $config.($pair[0]) | Add-Member -NotePropertyName Endpoint -NotePropertyValue $pair[1] -Force
  }
  $new = $config | ConvertTo-Json -Depth 20
  if ($old -and $new.Trim() -eq $old.Trim()) { return }
  New-Item -ItemType Directory -Force -Path $AgentDir | Out-Null
  Set-Content -LiteralPath $AgentConfig -Value $new -Encoding ASCII
  $script:ConfigChanged = $true
  Write-Log "agent endpoints written to ${AgentConfig}: ssm '$SsmEndpoint' ec2messages '$Ec2messagesEndpoint' ssmmessages '$SsmmessagesEndpoint'"
}

# --- install (before the broker) and register (after) ----------------------------------------
function Install-Agent {
  if ($AgentPath) { Stop-Install $EXIT_INSTALL_FAILED "-AgentPath '$AgentPath' is not an executable file" }
  if ($Package) {
    $source = $Package; $installer = Join-Path $work (Split-Path -Leaf $Package)
    Copy-Item -LiteralPath $Package -Destination $installer   # the file checked is the file installed
  } else {
    if (-not $Region -and -not $MirrorUrl) { Stop-Install $EXIT_USAGE 'the agent must be downloaded, and its region is not known before the broker is asked (the broker URL names none): pass -Region REGION, or -MirrorUrl, -Package or -AgentPath' }
    $base = if ($MirrorUrl) { $MirrorUrl } else { "https://amazon-ssm-$Region.s3.$Region.amazonaws.com" }
    $source = "$base/latest/windows_amd64/AmazonSSMAgentSetup.exe"; $installer = Join-Path $work 'AmazonSSMAgentSetup.exe'
    Write-Log "downloading $source"
    $download = @{ Uri = $source; OutFile = $installer; UseBasicParsing = $true }
    if ($Proxy) { $download.Proxy = $Proxy }
    try { Invoke-WebRequest @download } catch { Stop-Install $EXIT_INSTALL_FAILED "cannot download ${source}: $(Get-Safe $_.Exception.Message) (no registration was taken)" }
  }
  $signature = Get-AuthenticodeSignature -FilePath $installer
  $signer = if ($signature.SignerCertificate) { $signature.SignerCertificate.Subject } else { '' }
  if ($signature.Status -ne 'Valid' -or $signer -notmatch '(^|,\s*)O="?Amazon(\.com)?[ ,."]') {
    Stop-Install $EXIT_INSTALL_FAILED "$source signature is not valid or not Amazon's (status $($signature.Status), signer '$signer'): not running it"
  }
  Write-Log "Authenticode signature valid ($signer)"
  $installLog = Join-Path $work 'install.log'
  # No CODE/ID/REGION: the installer only installs; the registration comes after the broker.
  $process = if ($installer -like '*.msi') { Start-Process -FilePath 'msiexec.exe' -Wait -PassThru -ArgumentList @('/i', "`"$installer`"", '/qn', '/l*v', "`"$installLog`"") }
  else { Start-Process -FilePath $installer -Wait -PassThru -ArgumentList @('/q', '/log', "`"$installLog`"") }
  if (Test-Path -LiteralPath $installLog) { Write-ToolOutput (Get-Content -LiteralPath $installLog -Raw) ($process.ExitCode -ne 0) }
  if ($process.ExitCode -ne 0 -or -not (Test-AgentInstalled)) { Stop-Install $EXIT_INSTALL_FAILED "$source failed (exit $($process.ExitCode)); no registration was taken" }
}

# The agent runs and names its version, or the install is not done.
function Test-Agent {
  $out = (& $AgentExe -version 2>&1 | Out-String)
  if ($LASTEXITCODE -ne 0 -or $out -notmatch 'SSM Agent version: ([0-9.]+)') { Write-ToolOutput $out $true; Stop-Install $EXIT_INSTALL_FAILED "$AgentExe -version did not report an SSM Agent version: the agent is not usable" }
  Write-Log "agent $($Matches[1]) at $AgentExe"
}
# The code goes to the agent as an argument, for this one call. Returns the agent's output on failure.
function Register-Agent($Pair) {
  Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
  $flags = @('-register', '-code', $Pair.Code, '-id', $Pair.Id, '-region', $Pair.Region, '-y')
  if ($Force) { $flags += '-clear' }
  Write-Log "running amazon-ssm-agent.exe -register -code *** -id $($Pair.Id) -region $($Pair.Region) -y$(if ($Force) { ' -clear' })"
  $out = (& $AgentExe @flags 2>&1 | Out-String)
  $rc = $LASTEXITCODE
  Write-ToolOutput $out ($rc -ne 0)
  if ($rc -eq 0) { return '' } else { return "$out" }
}

# The end of every run: registered, automatic and running (automatic and stopped with -NoStart).
function Complete-Install([bool]$Fresh) {
  $id = Get-RegisteredId
  if (-not $id) { Stop-Install $EXIT_SERVICE_FAILED "no registration: $RegFile holds no ManagedInstanceID" }
  if (-not (Get-AgentService)) { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but there is no $ServiceName service" }
  try { Set-Service -Name $ServiceName -StartupType Automatic } catch { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but the $ServiceName service cannot be set to start automatically" }
  if ($NoStart) {
    if ($Fresh -and (Get-AgentService).Status -eq 'Running') { Stop-Service -Name $ServiceName }
    Write-Log "registered as managed node $id; $ServiceName automatic, not started (-NoStart)"
  } else {
    try {
      if ($script:ConfigChanged -and (Get-AgentService).Status -eq 'Running') { Restart-Service -Name $ServiceName }
      elseif ((Get-AgentService).Status -ne 'Running') { Write-Log "the $ServiceName service is not running: starting it"; Start-Service -Name $ServiceName }
    } catch { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but the $ServiceName service cannot be started: $(Get-Safe $_.Exception.Message)" }
    if ((Get-AgentService).Status -ne 'Running') { Stop-Install $EXIT_SERVICE_FAILED "registered as $id, but the $ServiceName service is not running" }
    Write-Log "registered as managed node $id; $ServiceName automatic and running"
  }
  Write-Output $id
}

# --- main ------------------------------------------------------------------------------------
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) { Stop-Install $EXIT_NOT_ROOT 'run as Administrator' }
# Two runs at once (a startup task and a GPO script) must not both take a registration.
$mutex = New-Object System.Threading.Mutex($false, 'Global\ssm-activation-broker-install')
try { [void]$mutex.WaitOne(900000) } catch [System.Threading.AbandonedMutexException] { }
$work = Join-Path ([IO.Path]::GetTempPath()) ('ssm-install-' + [Guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $work | Out-Null
try {
  if ($Proxy) { $env:https_proxy = $Proxy; $env:http_proxy = $Proxy; $env:no_proxy = "169.254.169.254$(if ($NoProxy) { ",$NoProxy" })" }
  $existing = Get-RegisteredId
  if ($existing -and -not $Force) {
    Write-Log "already registered as managed node $existing (-Force re-registers)"
    if (-not (Test-AgentInstalled)) { Stop-Install $EXIT_SERVICE_FAILED "registered as $existing, but no SSM Agent is installed: run again with -Force to install and re-register it" }
    Set-AgentProxy
    Set-AgentEndpoints
    Complete-Install $false
    exit $EXIT_OK
  }
  # 1-2. The agent, found or installed and verified. Nothing is reserved yet.
  if (-not (Test-AgentInstalled)) { Install-Agent }
  Test-Agent
  Set-AgentProxy
  Set-AgentEndpoints
  Set-PSDebug -Off   # 3-4. Only now a pair, and the registration; tracing would print the code.
  $pair = Get-Activation ''
  $failure = Register-Agent $pair
  if ($failure) {
    # A refused pair (activation used up, deleted or expired) is reported to the broker ONCE.
    if ($failure -notmatch '(RegistrationLimitExceeded|InvalidActivation|ActivationExpired)') { Stop-Install $EXIT_REGISTRATION_FAILED "the agent could not register: $(Get-Safe ($failure -split "`n" | Select-String -Pattern 'fail' | Select-Object -First 1))" }
    Write-Log "SSM refused activation $($pair.Id) ($($Matches[1])): asking the broker once for another"
    $pair = Get-Activation $pair.Id
    $failure = Register-Agent $pair
    if ($failure) { Stop-Install $EXIT_REGISTRATION_FAILED 'the agent could not register with a second pair either' }
  }
  $pair = $null; $script:ActCode = ''; $script:ConfigChanged = $false
  # 5. Automatic and running (or automatic only, -NoStart), and verified.
  Complete-Install $true
  exit $EXIT_OK
} catch {
  Stop-Install $EXIT_FAILURE (Get-Safe $_.Exception.Message)
} finally {
  $pair = $null; $script:ActCode = ''
  Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
  try { $mutex.ReleaseMutex() } catch { }
}
